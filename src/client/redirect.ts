import { ConnectionLostError, ServerRedirectError } from './errors.js';

/**
 * 5.0 Server Reference (CONNACK / DISCONNECT 0x9C, 0x9D): the spec leaves its format open; commonly
 * "host", "host:port", "[v6addr]:port" or a URL, possibly several separated by spaces (the first is used).
 */
export function parseServerReference(ref: string, defaultPort: number): { host: string; port: number } | undefined {
  let first = ref.trim().split(/\s+/)[0] ?? '';
  const url = /^[a-z][a-z0-9+.-]*:\/\//i.exec(first);
  if (url) first = first.slice(url[0].length).replace(/\/.*$/, '').replace(/^.*@/, '');
  let host = first;
  let port = defaultPort;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(first);
  if (v6) {
    host = v6[1]!;
    if (v6[2] !== undefined) port = Number(v6[2]);
  } else {
    const colon = first.lastIndexOf(':');
    if (colon >= 0 && first.indexOf(':') === colon) {
      host = first.slice(0, colon);
      port = Number(first.slice(colon + 1));
    }
  }
  if (host === '' || !Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host, port };
}

/** Where a CONNACK or DISCONNECT 0x9C/0x9D with a usable Server Reference sends the client; `moved` for 0x9D. */
export function redirectOf(error: Error | undefined, port: number): { target: { host: string; port: number }; moved: boolean } | undefined {
  const redirect = error instanceof ServerRedirectError ? { ref: error.serverReference, moved: error.moved }
    : error instanceof ConnectionLostError && (error.reasonCode === 0x9c || error.reasonCode === 0x9d)
      ? { ref: error.serverReference, moved: error.reasonCode === 0x9d } : undefined;
  const target = redirect?.ref !== undefined ? parseServerReference(redirect.ref, port) : undefined;
  return redirect && target ? { target, moved: redirect.moved } : undefined;
}
