/**
 * The HTTP listener (docs/http.md): Prometheus metrics at `/metrics`, the JSON admin API at
 * `/api/v1/...` and the web dashboard at `/`, on node:http or node:https, no framework. One per `http_listener` line; embedders call
 * `startHttpListener(broker, options)`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Broker } from '../broker/broker.js';
import { authorize, isLoopbackHost, type HttpAuthOptions } from './auth.js';
import { ApiError, ROUTES, type ApiContext, type ApiResult } from './api.js';
import { metricsRegistry, renderMetrics, setBridgeSource } from './metrics.js';
import { OPENAPI } from './openapi.js';
import { maskSecrets } from './mask.js';
import { dashboardFile } from './dashboard.js';
import { attachPlainRequestHandler } from '../transport/plain-http.js';

export type { HttpAuthOptions } from './auth.js';

export interface HttpListenerOptions {
  /** 0 asks the OS for a free port */
  port: number;
  /** default '127.0.0.1'. Only 127.0.0.1, ::1 and localhost count as loopback (no login); see docs/http.md */
  host?: string;
  /** HTTPS with this certificate and key (PEM) */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** credentials asked for when bound beyond loopback */
  auth?: HttpAuthOptions;
  /** what GET /api/v1/config shows; default: the broker's options. Secrets are masked either way. */
  config?: unknown;
  /** the largest request body accepted, bytes (default 1 MiB); larger ones get 413 */
  maxBodyBytes?: number;
  /** the bridges and their state, for GET /api/v1/bridges and the midge_bridge_* metrics (default: none) */
  bridges?: () => BridgeInfo[];
  /**
   * Share the port of the broker's open `protocol websockets` listener on `port` instead of binding one:
   * its plain HTTP requests come here (instead of its `http_dir`), its upgrades stay MQTT. The address
   * and TLS are that listener's (`host` and `tls` must not be given); loopback or not follows its address.
   */
  shareWebSocketListener?: boolean;
}

/** A bridge as GET /api/v1/bridges lists it (`connection NAME` of the configuration). */
export interface BridgeInfo {
  name: string;
  /** 'connected' | 'connecting' | 'disconnected' | 'stopped' */
  state: string;
  /** the remote address in use, or the next one tried */
  address: string;
  connects: number;
  messagesOut: number;
  messagesIn: number;
  dropped: number;
}

export interface HttpListener {
  /** the bound address */
  readonly address: { host: string; port: number };
  readonly tls: boolean;
  /** e.g. `http://127.0.0.1:8080` */
  readonly url: string;
  close(): Promise<void>;
}

const DEFAULT_MAX_BODY = 1024 * 1024;
/** every HTTP listener of a broker, for GET /api/v1/broker */
const listenersOf = new WeakMap<Broker, Set<HttpListener>>();

/** Start an HTTP listener serving `broker`'s metrics and admin API. Resolves once it is bound. */
export async function startHttpListener(broker: Broker, options: HttpListenerOptions): Promise<HttpListener> {
  const shared = options.shareWebSocketListener === true ? broker.webSocketListener(options.port) : undefined;
  if (options.shareWebSocketListener === true) {
    if (shared === undefined) throw new Error(`Unable to open the http_listener on port ${options.port}: the broker has no open websockets listener on that port to share.`);
    if (options.tls !== undefined || (options.host !== undefined && options.host !== shared.host)) {
      throw new Error(`Unable to open the http_listener on port ${options.port}: it shares the websockets listener there, whose address and TLS it takes (give neither host nor tls).`);
    }
  }
  const host = shared?.host ?? options.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  const auth = options.auth ?? {};
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const tls = shared !== undefined ? shared.tls : options.tls !== undefined;
  const configView = (): unknown => maskSecrets(options.config ?? publicOptions(broker));
  const ctx: ApiContext = {
    broker,
    config: configView,
    httpListeners: () => [...(listenersOf.get(broker) ?? [])].map((l) => ({ ...l.address, tls: l.tls })),
    bridges: options.bridges ?? (() => []),
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    serve(req, res, ctx, loopback, auth, maxBody).catch((err: unknown) => {
      broker.log.error(`HTTP ${req.method ?? '?'} ${pathOf(req)}: internal error: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) send(res, { status: 500, body: { error: 'internal error' } });
      else res.destroy();
    });
  };
  if (options.bridges !== undefined) setBridgeSource(broker, options.bridges);
  // prom-client is loaded and its default metrics (GC observer, event-loop delay monitor) start now, at
  // startup: not on the first scrape, which would stall a loaded broker's event loop for 50-200 ms, and
  // the GC and event-loop figures then cover the broker's whole life
  await metricsRegistry(broker);
  let address: { host: string; port: number };
  let stop: () => Promise<void>;
  if (shared !== undefined) {
    const detach = attachPlainRequestHandler(shared.server, onRequest);
    address = { host: shared.host, port: shared.port };
    stop = () => { detach(); return Promise.resolve(); };
  } else {
    const server = tls ? https.createServer({ cert: options.tls!.cert, key: options.tls!.key }, onRequest) : http.createServer(onRequest);
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new Error(`Unable to open the http_listener on ${host}:${options.port}: ${err.code === 'EADDRINUSE' ? 'Address already in use' : err.message}`));
      });
      server.listen({ port: options.port, host, exclusive: true }, () => resolve());
    });
    server.on('error', (err) => broker.log.error(`http_listener: ${err.message}`));
    if (tls) server.on('tlsClientError', (err: Error) => broker.log.debug(`http_listener: TLS handshake failed: ${err.message}`));
    const addr = server.address() as AddressInfo;
    address = { host: addr.address, port: addr.port };
    stop = () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
  const scheme = tls ? 'https' : 'http';
  const urlHost = address.host.includes(':') ? `[${address.host}]` : address.host;
  let closed = false;
  const listener: HttpListener = {
    address,
    tls,
    url: `${scheme}://${urlHost}:${address.port}`,
    close: () => {
      if (closed) return Promise.resolve();
      closed = true;
      listenersOf.get(broker)?.delete(listener);
      return stop();
    },
  };
  let set = listenersOf.get(broker);
  if (set === undefined) listenersOf.set(broker, (set = new Set()));
  set.add(listener);
  if (!loopback && auth.token === undefined && auth.verifyUser === undefined) {
    broker.log.warning(`The ${scheme} listener on ${host} is beyond loopback and has no admin credentials (http_token_file, http_admin_user): the admin API refuses every request.`);
  }
  const sharing = shared !== undefined ? `, sharing the websockets listener's port` : '';
  broker.log.info(`Opening ${scheme} listen socket on ${listener.url} (metrics and admin API${loopback ? ', loopback: no login' : ', login required'}${sharing}).`);
  return listener;
}

/** The broker's options as GET /api/v1/config shows them to an embedder: no hooks, logger, store or clock. */
function publicOptions(broker: Broker): unknown {
  const { hooks: _h, logger: _l, store, clock: _c, ...rest } = broker.opts;
  return { ...rest, persistence: store !== undefined };
}

function pathOf(req: IncomingMessage): string {
  const u = req.url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

async function serve(req: IncomingMessage, res: ServerResponse, ctx: ApiContext, loopback: boolean, auth: HttpAuthOptions, maxBody: number): Promise<void> {
  const log = ctx.broker.log;
  const method = req.method ?? 'GET';
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://localhost');
  } catch {
    send(res, { status: 400, body: { error: 'bad request URL' } });
    return;
  }
  const path = url.pathname;
  const peer = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? 0}`;
  const isMetrics = path === '/metrics';
  const verdict = await authorize(req, loopback, isMetrics, auth);
  if (!verdict.ok) {
    // the reason, never the credentials
    log.info(`HTTP ${verdict.status} for ${method} ${path} from ${peer}: ${verdict.error}.`);
    const headers: Record<string, string> = verdict.challenge
      ? { 'www-authenticate': isMetrics && auth.metricsToken !== undefined && auth.verifyUser === undefined ? 'Bearer realm="midge"' : 'Basic realm="midge", charset="UTF-8"' }
      : {};
    req.resume();
    send(res, { status: verdict.status, body: { error: verdict.error }, headers });
    return;
  }
  const result = await answer(req, method, url, ctx, maxBody);
  if (typeof result.body === 'string') {
    res.writeHead(result.status, { 'content-type': result.headers?.['content-type'] ?? 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(result.body);
  } else {
    send(res, result);
  }
  log.debug(`HTTP ${method} ${path} from ${peer}: ${result.status}`);
}

async function answer(req: IncomingMessage, method: string, url: URL, ctx: ApiContext, maxBody: number): Promise<ApiResult> {
  const path = url.pathname;
  try {
    if (path === '/metrics') {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(['GET']);
      const m = await renderMetrics(ctx.broker);
      return { status: 200, body: m.body, headers: { 'content-type': m.contentType } };
    }
    if (path === '/api/v1/openapi.json') {
      if (method !== 'GET') throw methodNotAllowed(['GET']);
      return { status: 200, body: OPENAPI };
    }
    if (!path.startsWith('/api/')) {
      const file = dashboardFile(path);
      if (file !== undefined) {
        if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(['GET']);
        return file;
      }
    }
    for (const r of ROUTES) {
      const m = r.pattern.exec(path);
      if (m === null) continue;
      const handler = r.methods[method as 'GET' | 'POST' | 'DELETE'];
      if (handler === undefined) throw methodNotAllowed(Object.keys(r.methods));
      let params: string[];
      try {
        params = m.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        throw new ApiError(400, 'bad percent-encoding in the path');
      }
      const body = method === 'POST' ? await readJson(req, maxBody) : undefined;
      return await handler(ctx, { method, params, query: url.searchParams, body });
    }
    throw new ApiError(404, `no such endpoint: ${path}`);
  } catch (err) {
    if (err instanceof ApiError) {
      const r: ApiResult = { status: err.status, body: { error: err.message } };
      if (err instanceof MethodNotAllowed) r.headers = { allow: err.allow.join(', ') };
      return r;
    }
    throw err;
  } finally {
    // a body nobody read (GET with a body, an error before reading) is drained
    if (!req.readableEnded) req.resume();
  }
}

class MethodNotAllowed extends ApiError {
  constructor(readonly allow: string[]) {
    super(405, `method not allowed (allowed: ${allow.join(', ')})`);
  }
}

function methodNotAllowed(allow: string[]): MethodNotAllowed {
  return new MethodNotAllowed(allow);
}

/** The request body as JSON, at most `max` bytes: 413 beyond, 400 for bad JSON. Undefined for an empty body. */
function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > max) return Promise.reject(new ApiError(413, `the request body is over ${max} bytes`));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      if (failed) return;
      size += c.length;
      if (size > max) { failed = true; reject(new ApiError(413, `the request body is over ${max} bytes`)); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks, size).toString('utf8');
      if (text.trim() === '') { resolve(undefined); return; }
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new ApiError(400, `bad JSON: ${err instanceof Error ? err.message : String(err)}`));
      }
    });
    req.on('error', (err) => { if (!failed) { failed = true; reject(err); } });
  });
}

function send(res: ServerResponse, r: ApiResult): void {
  const body = JSON.stringify(r.body, jsonReplacer);
  res.writeHead(r.status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
    ...(r.headers ?? {}),
  });
  res.end(body);
}

/** Buffers (never expected in an answer) as their size; bigints as numbers. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value !== null && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return `(${(value as { data: unknown[] }).data.length} bytes)`;
  }
  return value;
}
