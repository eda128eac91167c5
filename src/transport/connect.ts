/**
 * Client-side transports: a small registry from URL scheme to a function that opens a connected Duplex.
 * `mqtt:`/`tcp:` → TCP, `mqtts:`/`tls:`/`ssl:` → TLS, `ws:`/`wss:` → WebSocket (subprotocol "mqtt").
 * Every failure is a TransportError with Node's error code, so callers can tell a refused port,
 * a failed lookup and a TLS certificate problem apart.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { TransportError } from '../client/errors.js';

export interface TlsOptions {
  /** trusted CA certificates (PEM); default: Node's bundled roots */
  ca?: string | Buffer | Array<string | Buffer>;
  /** client certificate and key (PEM) */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** SNI and the name the certificate must match; default: the host when it is a name */
  servername?: string;
  /** verify the certificate chain (default true) */
  rejectUnauthorized?: boolean;
  /** verify the chain but not the host name (mosquitto's --insecure) */
  skipHostnameCheck?: boolean;
  minVersion?: tls.SecureVersion;
  maxVersion?: tls.SecureVersion;
  /** OpenSSL cipher list */
  ciphers?: string;
  /** ALPN protocol names to offer */
  alpnProtocols?: string[];
}

export interface TransportOptions {
  host: string;
  port: number;
  /** WebSocket path, default "/mqtt" */
  path?: string;
  tls?: TlsOptions;
  /** ms for the TCP/TLS/WebSocket handshake */
  timeout?: number;
  /** local address to bind the outgoing socket to */
  localAddress?: string;
}

export interface TransportDefinition {
  defaultPort: number;
  secure: boolean;
  open(options: TransportOptions): Promise<Duplex>;
}

const registry = new Map<string, TransportDefinition>();

/** Adds or replaces the transport for a URL scheme (without the colon: "mqtt", "wss"...). */
export function registerTransport(scheme: string, definition: TransportDefinition): void {
  registry.set(scheme.toLowerCase(), definition);
}

export function getTransport(scheme: string): TransportDefinition | undefined {
  return registry.get(scheme.replace(/:$/, '').toLowerCase());
}

export function transportSchemes(): string[] {
  return [...registry.keys()];
}

function wrap(err: unknown, secure: boolean): TransportError {
  if (err instanceof TransportError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const isTls = secure && (code === undefined || !/^E[A-Z]+$/.test(code) || code === 'ECONNRESET');
  return new TransportError(e?.message ?? String(err), code, isTls, { cause: err });
}

/** Resolves with the socket once `ready` fires; rejects on error, close or timeout before that. */
function settle<T extends Duplex>(socket: T, ready: string, secure: boolean, timeout: number | undefined): Promise<T> {
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = (): void => {
      if (timer) clearTimeout(timer);
      socket.off(ready, onReady);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const onReady = (): void => { cleanup(); resolve(socket); };
    const onError = (err: Error): void => { cleanup(); socket.destroy(); reject(wrap(err, secure)); };
    const onClose = (): void => {
      cleanup();
      reject(new TransportError('connection closed during the handshake', 'ECONNRESET', secure));
    };
    socket.once(ready, onReady);
    socket.once('error', onError);
    socket.once('close', onClose);
    if (timeout !== undefined && timeout > 0) {
      timer = setTimeout(() => {
        cleanup();
        socket.destroy();
        reject(new TransportError(`connection timed out after ${timeout} ms`, 'ETIMEDOUT', false));
      }, timeout);
    }
  });
}

async function openTcp(o: TransportOptions): Promise<Duplex> {
  const socket = net.connect({ host: o.host, port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
  socket.setNoDelay(true);
  return settle(socket, 'connect', false, o.timeout);
}

function tlsConnectOptions(o: TransportOptions): tls.ConnectionOptions {
  const t = o.tls ?? {};
  const options: tls.ConnectionOptions = {
    host: o.host, port: o.port, rejectUnauthorized: t.rejectUnauthorized ?? true,
  };
  if (o.localAddress) (options as { localAddress?: string }).localAddress = o.localAddress;
  const servername = t.servername ?? (net.isIP(o.host) ? undefined : o.host);
  if (servername !== undefined) options.servername = servername;
  if (t.ca !== undefined) options.ca = t.ca;
  if (t.cert !== undefined) options.cert = t.cert;
  if (t.key !== undefined) options.key = t.key;
  if (t.minVersion !== undefined) options.minVersion = t.minVersion;
  if (t.maxVersion !== undefined) options.maxVersion = t.maxVersion;
  if (t.ciphers !== undefined) options.ciphers = t.ciphers;
  if (t.alpnProtocols !== undefined) options.ALPNProtocols = t.alpnProtocols;
  if (t.skipHostnameCheck) options.checkServerIdentity = () => undefined;
  return options;
}

async function openTls(o: TransportOptions): Promise<Duplex> {
  const socket = tls.connect(tlsConnectOptions(o));
  socket.setNoDelay(true);
  return settle(socket, 'secureConnect', true, o.timeout);
}

async function openWebSocket(o: TransportOptions, secure: boolean): Promise<Duplex> {
  const { default: WebSocket, createWebSocketStream } = await import('ws');
  const host = net.isIPv6(o.host) ? `[${o.host}]` : o.host;
  const url = `${secure ? 'wss' : 'ws'}://${host}:${o.port}${o.path ?? '/mqtt'}`;
  const ws = new WebSocket(url, 'mqtt', secure ? tlsConnectOptions(o) : {});
  await new Promise<void>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const done = (err?: unknown): void => {
      if (timer) clearTimeout(timer);
      ws.off('open', onOpen);
      ws.off('error', onError);
      if (err) { ws.terminate(); reject(wrap(err, secure)); } else resolve();
    };
    const onOpen = (): void => done();
    const onError = (err: Error): void => done(err);
    ws.once('open', onOpen);
    ws.once('error', onError);
    if (o.timeout) timer = setTimeout(() => done(new TransportError(`connection timed out after ${o.timeout} ms`, 'ETIMEDOUT', false)), o.timeout);
  });
  return createWebSocketStream(ws);
}

const tcp: TransportDefinition = { defaultPort: 1883, secure: false, open: openTcp };
const secureTcp: TransportDefinition = { defaultPort: 8883, secure: true, open: openTls };
registerTransport('mqtt', tcp);
registerTransport('tcp', tcp);
registerTransport('mqtts', secureTcp);
registerTransport('tls', secureTcp);
registerTransport('ssl', secureTcp);
registerTransport('ws', { defaultPort: 80, secure: false, open: (o) => openWebSocket(o, false) });
registerTransport('wss', { defaultPort: 443, secure: true, open: (o) => openWebSocket(o, true) });
