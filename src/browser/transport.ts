/**
 * The browser's transport registry: replaces src/transport/connect.ts in the browser bundle (esbuild maps
 * it here), so that no `node:net` / `node:tls` / `ws` is pulled in. `ws://` and `wss://` open the
 * browser's global WebSocket (subprotocol "mqtt"); `mqtt://`, `mqtts://` and the other TCP schemes do not
 * exist in a browser and are refused with an InvalidArgumentError at connect().
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { TransportError } from '../client/errors.js';
import type { TlsOptions, TransportDefinition, TransportOptions } from '../transport/connect.js';

export type { TlsOptions, TransportDefinition, TransportOptions } from '../transport/connect.js';

const registry = new Map<string, TransportDefinition>();

/** Adds or replaces the transport for a URL scheme (without the colon: "ws", "wss"...). */
export function registerTransport(scheme: string, definition: TransportDefinition): void {
  registry.set(scheme.toLowerCase(), definition);
}

export function getTransport(scheme: string): TransportDefinition | undefined {
  return registry.get(scheme.replace(/:$/, '').toLowerCase());
}

export function transportSchemes(): string[] {
  return [...registry.keys()];
}

interface BrowserWebSocket {
  binaryType: string;
  readyState: number;
  bufferedAmount: number;
  onopen: ((ev: unknown) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean: boolean }) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
type WebSocketCtor = new (url: string, protocols?: string | string[]) => BrowserWebSocket;

/**
 * The part of a Duplex the client uses (on 'data' / 'error' / 'close', write, end, destroy, destroyed)
 * over a browser WebSocket: every binary message is a 'data' chunk (a Buffer), every write one message.
 */
class WebSocketStream extends EventEmitter {
  destroyed = false;
  private closed = false;

  constructor(private readonly ws: BrowserWebSocket) {
    super();
    ws.onmessage = (ev) => {
      const d = ev.data;
      if (d instanceof ArrayBuffer) this.emit('data', Buffer.from(d));
      else if (typeof d === 'string') this.emit('data', Buffer.from(d, 'utf8'));
    };
    ws.onerror = () => { if (!this.closed) this.emit('error', new TransportError('WebSocket error', 'ECONNRESET', false)); };
    ws.onclose = () => this.finish();
  }

  write(data: Uint8Array): boolean {
    if (this.destroyed || this.ws.readyState !== 1) return false;
    this.ws.send(data);
    return true;
  }

  end(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      try { this.ws.close(1000); } catch { /* already closing */ }
    }
    return this;
  }

  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      try { this.ws.close(1000); } catch { /* already closing */ }
    }
    // the client waits for 'close'; do not make it wait for the browser's closing handshake
    queueMicrotask(() => this.finish());
    return this;
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.destroyed = true;
    this.emit('close');
  }
}

function openWebSocket(o: TransportOptions, secure: boolean): Promise<Duplex> {
  const WS = (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
  if (WS === undefined) return Promise.reject(new TransportError('no global WebSocket in this environment', 'ENOTSUP', false));
  const host = o.host.includes(':') && !o.host.startsWith('[') ? `[${o.host}]` : o.host;
  const url = `${secure ? 'wss' : 'ws'}://${host}:${o.port}${o.path ?? '/mqtt'}`;
  return new Promise((resolve, reject) => {
    let ws: BrowserWebSocket;
    try {
      ws = new WS(url, 'mqtt');
    } catch (err) {
      reject(new TransportError(err instanceof Error ? err.message : String(err), 'EINVAL', false, { cause: err }));
      return;
    }
    ws.binaryType = 'arraybuffer';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const fail = (err: TransportError): void => {
      if (timer !== undefined) clearTimeout(timer);
      ws.onopen = ws.onerror = ws.onclose = null;
      try { ws.close(); } catch { /* not open */ }
      reject(err);
    };
    ws.onopen = () => {
      if (timer !== undefined) clearTimeout(timer);
      ws.onopen = null;
      resolve(new WebSocketStream(ws) as unknown as Duplex);
    };
    // a browser tells nothing about why (refused, TLS, HTTP status): one error for all
    ws.onerror = () => fail(new TransportError(`WebSocket connection to ${url} failed`, 'ECONNREFUSED', secure));
    ws.onclose = () => fail(new TransportError(`WebSocket connection to ${url} closed during the handshake`, 'ECONNRESET', secure));
    if (o.timeout !== undefined && o.timeout > 0) {
      timer = setTimeout(() => fail(new TransportError(`connection timed out after ${o.timeout} ms`, 'ETIMEDOUT', false)), o.timeout);
    }
  });
}

registerTransport('ws', { defaultPort: 80, secure: false, open: (o) => openWebSocket(o, false) });
registerTransport('wss', { defaultPort: 443, secure: true, open: (o) => openWebSocket(o, true) });
