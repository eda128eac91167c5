/**
 * WebSocket listeners (`protocol websockets`): MQTT over ws:// and, with the listener's certfile and
 * keyfile, wss://, on the `ws` package. Any request path is accepted; the subprotocol is "mqtt" or
 * "mqttv3.1" (the first of those the client offers; a client that offers none is served without one);
 * `websockets_origin` refuses other Origins with 403; `http_dir` serves static files to plain HTTP GET.
 *
 * The broker sees each WebSocket as a Duplex (WebSocketDuplex below), exactly as it sees a TCP socket:
 * binary messages are its bytes (a message may hold part of a packet or several), its writes are
 * binary messages, and a write is done only when the frame is in the kernel, so that the Duplex's
 * writableLength and 'drain' carry the WebSocket's backpressure to the Connection.
 */
import http from 'node:http';
import https from 'node:https';
import { createReadStream, realpathSync, statSync } from 'node:fs';
import { extname, resolve, sep } from 'node:path';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import type { ListenerOptions } from '../broker/options.js';
import type { Logger } from '../broker/log.js';
import { stripV4Mapped, type OnConnection } from './tcp.js';
import { plainHandlerOf } from './plain-http.js';
import { tlsServerOptions, verifyPeer, watchTlsServer, TLS_HANDSHAKE_TIMEOUT_MS, type PeerCertificate } from './tls.js';

/** The subprotocols MQTT uses: "mqtt" (3.1.1 and 5.0, MQTT 5.0 section 6) and "mqttv3.1" (3.1). */
export const MQTT_SUBPROTOCOLS: readonly string[] = ['mqtt', 'mqttv3.1'];

/** The largest MQTT packet: 1 byte of type, 4 of remaining length, 268435455 of body. */
const MAX_MQTT_PACKET = 268_435_460;

/** Room in one WebSocket message beyond one packet of the largest size, for the packets beside it. */
const MESSAGE_SLACK = 64 * 1024;

export interface WebSocketLimits {
  /** max_packet_size (0 = none): a WebSocket message larger than it (plus some slack) is refused (1009) */
  maxPacketSize?: number;
}

/**
 * A WebSocket listener's HTTP(S) server. Upgrades become connections; plain requests get `http_dir`'s
 * files (or 404). A bad request, a refused origin, a missing subprotocol or a client that goes away
 * mid-handshake costs only that socket.
 */
export function createWebSocketServer(spec: ListenerOptions, onConnection: OnConnection, log: Logger,
  limits: WebSocketLimits = {}): http.Server {
  let port = spec.port;
  const serverOptions: http.ServerOptions = {
    noDelay: true,
    requestTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    headersTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
    ...(spec.websocketsHeadersSize !== undefined && spec.websocketsHeadersSize > 0 ? { maxHeaderSize: spec.websocketsHeadersSize } : {}),
  };
  const peers = new WeakMap<Socket, PeerCertificate>();
  let server: http.Server;
  if (spec.tls !== undefined) {
    const s = https.createServer({ ...serverOptions, ...tlsServerOptions(spec.tls) });
    s.prependListener('secureConnection', (socket: TLSSocket) => {
      const peer = verifyPeer(socket, spec, port, log);
      if (peer !== undefined) peers.set(socket, peer);
    });
    watchTlsServer(s, spec, () => port, log);
    server = s;
  } else {
    server = http.createServer(serverOptions);
  }
  const maxPacket = limits.maxPacketSize !== undefined && limits.maxPacketSize > 0 ? limits.maxPacketSize : MAX_MQTT_PACKET;
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: maxPacket + MESSAGE_SLACK,
    // text frames are refused, never decoded
    skipUTF8Validation: true,
    handleProtocols: (offered) => chooseSubprotocol(offered) ?? false,
  });
  const origins = spec.websocketsOrigins?.map((o) => o.toLowerCase());

  server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', ignore); // until ws owns the socket (a peer gone mid-handshake)
    const address = stripV4Mapped(socket.remoteAddress ?? 'unknown');
    const remotePort = socket.remotePort ?? 0;
    const refuse = (status: number, why: string): void => {
      log.info(`Client connection from ${address}:${remotePort} on port ${port} refused: ${why}.`);
      abortHandshake(socket, status);
    };
    if (socket.destroyed) return;
    if (spec.tls !== undefined && !peers.has(socket)) { socket.destroy(); return; } // certificate refused
    if (origins !== undefined) {
      const origin = req.headers.origin;
      if (origin === undefined || !origins.includes(origin.toLowerCase())) {
        refuse(403, origin === undefined ? 'no Origin header (websockets_origin)' : `origin "${printable(origin)}" is not allowed (websockets_origin)`);
        return;
      }
    }
    const offered = req.headers['sec-websocket-protocol'];
    if (offered !== undefined && chooseSubprotocol(new Set(offered.split(',').map((p) => p.trim()))) === undefined) {
      refuse(400, `no MQTT WebSocket subprotocol offered ("${printable(offered)}"; expected mqtt or mqttv3.1)`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', ignore);
      const peer = peers.get(socket);
      onConnection(new WebSocketDuplex(ws), {
        remoteAddress: address,
        remotePort,
        listenerPort: port,
        ...(peer?.certificate !== undefined ? { certificate: peer.certificate } : {}),
        ...(peer?.certificateIdentity !== undefined ? { certificateIdentity: peer.certificateIdentity } : {}),
      });
    });
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    if (spec.tls !== undefined && !peers.has(req.socket)) { req.socket.destroy(); return; }
    const shared = plainHandlerOf(server);
    if (shared !== undefined) shared(req, res);
    else serveStatic(spec.httpDir, req, res, log);
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // a malformed request, headers over websockets_headers_size, or a client gone mid-request
    if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    setTimeout(destroyQuietly, 1000, socket).unref();
  });
  server.once('listening', () => {
    const a = server.address();
    if (a !== null && typeof a !== 'string') port = a.port;
  });
  if (spec.maxConnections !== undefined && spec.maxConnections >= 0) server.maxConnections = spec.maxConnections;
  return server;
}

/** The subprotocol to answer with: the first one the client offers that MQTT uses. */
export function chooseSubprotocol(offered: ReadonlySet<string>): string | undefined {
  for (const p of offered) if (MQTT_SUBPROTOCOLS.includes(p)) return p;
  return undefined;
}

function abortHandshake(socket: Duplex, status: number): void {
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\n`
      + `Content-Length: ${Buffer.byteLength(http.STATUS_CODES[status] ?? '')}\r\n\r\n${http.STATUS_CODES[status] ?? ''}`);
  }
  setTimeout(destroyQuietly, 1000, socket).unref();
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8', '.htm': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.ico': 'image/x-icon', '.wasm': 'application/wasm', '.map': 'application/json',
};

/**
 * http_dir: GET and HEAD of a file inside the directory. A path with a `..` segment, or one whose real
 * path (symbolic links followed) is outside the directory, gets 403; a missing file 404; a directory
 * its index.html.
 */
function serveStatic(dir: string | undefined, req: http.IncomingMessage, res: http.ServerResponse, log: Logger): void {
  const answer = (status: number, headers: http.OutgoingHttpHeaders = {}): void => {
    const body = `${http.STATUS_CODES[status] ?? ''}\n`;
    log.debug(`HTTP ${req.method ?? '?'} ${printable(req.url ?? '')} from ${stripV4Mapped(req.socket.remoteAddress ?? 'unknown')}: ${status}`);
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(body), ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (dir === undefined) { answer(404); return; }
  if (req.method !== 'GET' && req.method !== 'HEAD') { answer(405, { Allow: 'GET, HEAD' }); return; }
  const raw = (req.url ?? '/').split('?')[0]!.split('#')[0]!;
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    answer(400);
    return;
  }
  if (!path.startsWith('/') || path.includes('\0')) { answer(400); return; }
  if (path.split(/[/\\]/).includes('..')) { answer(403); return; }
  if (path.endsWith('/')) path += 'index.html';
  let root: string;
  let file: string;
  try {
    root = realpathSync(dir);
    file = realpathSync(resolve(root, `.${path}`));
  } catch {
    answer(404);
    return;
  }
  if (!file.startsWith(root + sep)) { answer(403); return; }
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) { answer(404); return; }
    size = st.size;
  } catch {
    answer(404);
    return;
  }
  log.debug(`HTTP ${req.method} ${printable(raw)} from ${stripV4Mapped(req.socket.remoteAddress ?? 'unknown')}: 200`);
  res.writeHead(200, {
    'Content-Type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': size,
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') { res.end(); return; }
  const stream = createReadStream(file);
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/** A header value for a log line: printable ASCII, at most 100 characters. */
function printable(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean;
}

function ignore(): void { /* a socket error during the handshake: the socket is destroyed anyway */ }
function destroyQuietly(s: Duplex): void { if (!s.destroyed) s.destroy(); }

const SEND_OPTIONS = { binary: true, compress: false, fin: true } as const;

/**
 * One WebSocket as the Duplex a Connection reads and writes. Binary messages are pushed as they come
 * (reading pauses the WebSocket, and so its TCP socket, when the broker stops reading). A text frame
 * closes the connection with 1003 [MQTT-6.0.0-1]. Writes are sent as binary messages (writev joins a
 * turn's packets into one); each completes when the frame is handed to the kernel.
 */
export class WebSocketDuplex extends Duplex {
  constructor(private readonly ws: WebSocket) {
    super({ allowHalfOpen: false, decodeStrings: true });
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      if (this.destroyed) return;
      if (!isBinary) {
        ws.close(1003, 'MQTT needs binary frames');
        this.destroy(Object.assign(new Error('a text frame: MQTT over WebSockets uses binary frames only'), { code: 'WS_TEXT_FRAME' }));
        return;
      }
      const chunk = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      if (!this.push(chunk)) ws.pause();
    });
    ws.on('error', (err: Error) => { this.destroy(err); });
    ws.on('close', () => {
      this.push(null);
      // the broker normally reads the end at once; a paused stream is torn down shortly after
      setTimeout(() => { if (!this.destroyed) this.destroy(); }, 1000).unref();
    });
  }

  override _read(): void {
    if (this.ws.isPaused) this.ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) { cb(); return; } // closing: what is left is dropped, as on a reset socket
    this.ws.send(chunk, SEND_OPTIONS, cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) { cb(); return; }
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.ws.send(data, SEND_OPTIONS, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else if (ws.readyState === WebSocket.CLOSING) (setTimeout(terminateQuietly, 1000, ws) as NodeJS.Timeout).unref();
    cb(err);
  }
}

function terminateQuietly(ws: WebSocket): void { if (ws.readyState !== WebSocket.CLOSED) ws.terminate(); }
