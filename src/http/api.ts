/**
 * The JSON admin API, version 1 (`/api/v1/...`), over the broker's facade methods (clientList,
 * disconnectClient, sessionInfo, addSubscription, retainedMessages, publish...). Every answer is JSON;
 * every error is `{"error": "..."}` with a 4xx status.
 */
import { isValidTopicName } from '../topic/index.js';
import type { Broker } from '../broker/broker.js';
import type { Message } from '../broker/types.js';
import type { QoS } from '../codec/types.js';

/** An answer: a status and a JSON body (headers for 405's Allow). */
export interface ApiResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** What a handler gets. */
export interface ApiRequest {
  method: string;
  params: string[];
  query: URLSearchParams;
  /** the parsed JSON body (POST), undefined when none */
  body: unknown;
}

/** An error that becomes `{ error }` with its status. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface ApiContext {
  broker: Broker;
  /** what GET /api/v1/config shows (already masked) */
  config: () => unknown;
  /** the HTTP listeners' addresses, for GET /api/v1/broker */
  httpListeners: () => Array<{ host: string; port: number; tls: boolean }>;
  /** the bridges (GET /api/v1/bridges) */
  bridges: () => Array<{ name: string }>;
}

type Handler = (ctx: ApiContext, req: ApiRequest) => ApiResult | Promise<ApiResult>;

export interface Route {
  /** the path as OpenAPI writes it, e.g. `/api/v1/clients/{clientId}` */
  path: string;
  pattern: RegExp;
  methods: Partial<Record<'GET' | 'POST' | 'DELETE', Handler>>;
}

const ok = (body: unknown, status = 200): ApiResult => ({ status, body });

function route(path: string, methods: Route['methods']): Route {
  // {name} matches one path segment (percent-decoded by the server)
  const pattern = new RegExp(`^${path.replace(/\{[a-zA-Z]+\}/g, '([^/]+)')}$`);
  return { path, pattern, methods };
}

/** `?limit=&offset=`: limit 1..1000 (default 100), offset >= 0 (default 0). */
function paging(q: URLSearchParams): { limit: number; offset: number } {
  const num = (name: string, dflt: number, min: number, max: number): number => {
    const v = q.get(name);
    if (v === null || v === '') return dflt;
    if (!/^[0-9]{1,9}$/.test(v)) throw new ApiError(400, `${name} must be a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new ApiError(400, `${name} must be between ${min} and ${max}`);
    return n;
  };
  return { limit: num('limit', 100, 1, 1000), offset: num('offset', 0, 0, 999_999_999) };
}

function page<T>(items: T[], q: URLSearchParams): { total: number; offset: number; limit: number; items: T[] } {
  const { limit, offset } = paging(q);
  return { total: items.length, offset, limit, items: items.slice(offset, offset + limit) };
}

/** `?search=`: a case-insensitive substring of the client id or the user name. */
function matches(search: string | null, id: string, username: string | undefined): boolean {
  if (search === null || search === '') return true;
  const s = search.toLowerCase();
  return id.toLowerCase().includes(s) || (username !== undefined && username.toLowerCase().includes(s));
}

function objectBody(req: ApiRequest): Record<string, unknown> {
  const b = req.body;
  if (b === undefined) throw new ApiError(400, 'a JSON object body is required');
  if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new ApiError(400, 'the body must be a JSON object');
  return b as Record<string, unknown>;
}

function qosOf(v: unknown): QoS {
  if (v === undefined) return 0;
  if (v !== 0 && v !== 1 && v !== 2) throw new ApiError(400, 'qos must be 0, 1 or 2');
  return v;
}

function boolOf(name: string, v: unknown): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') throw new ApiError(400, `${name} must be true or false`);
  return v;
}

function topicParam(q: URLSearchParams): string {
  const topic = q.get('topic');
  if (topic === null) throw new ApiError(400, 'the topic query parameter is required');
  if (!isValidTopicName(topic)) throw new ApiError(400, `invalid topic name ${JSON.stringify(topic)}`);
  return topic;
}

/** A message as JSON: the payload as UTF-8 text when it is valid UTF-8 (else null), and always in base64. */
export function messageJson(m: Message): Record<string, unknown> {
  let text: string | null = null;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(m.payload);
  } catch {
    text = null;
  }
  const out: Record<string, unknown> = {
    topic: m.topic, qos: m.qos, payload: text, payloadBase64: m.payload.toString('base64'), bytes: m.payload.length,
  };
  if (m.expiresAt !== undefined) out.expiresAt = new Date(m.expiresAt).toISOString();
  if (m.properties !== undefined) {
    const { correlationData, ...rest } = m.properties;
    out.properties = correlationData !== undefined ? { ...rest, correlationData: Buffer.from(correlationData).toString('base64') } : rest;
  }
  return out;
}

function known<T>(v: T | undefined, what: string, id: string): T {
  if (v === undefined) throw new ApiError(404, `no ${what} ${JSON.stringify(id)}`);
  return v;
}

/** Every route of the API (the server matches them in order; the OpenAPI test lists them). */
export const ROUTES: readonly Route[] = [
  route('/api/v1/broker', {
    GET: ({ broker, httpListeners }) => {
      const m = broker.metricsSnapshot();
      return ok({
      version: broker.opts.version.replace(/^midge version /, ''),
      uptimeSeconds: Math.floor((broker.clock.now() - broker.stats.startedAt) / 1000),
      startedAt: new Date(broker.stats.startedAt).toISOString(),
      listeners: broker.listenerDetails.map((a) => ({ protocol: a.protocol, host: a.host, port: a.port, tls: a.tls })),
      httpListeners: httpListeners().map((a) => ({ protocol: a.tls ? 'https' : 'http', host: a.host, port: a.port })),
      clientsConnected: m.stats.clientsConnected,
      sessions: m.sessions,
      subscriptions: m.subscriptions,
      retainedMessages: m.retained,
      });
    },
  }),
  route('/api/v1/config', { GET: ({ config }) => ok(config()) }),
  route('/api/v1/bridges', { GET: ({ bridges }) => ok({ items: bridges() }) }),
  route('/api/v1/clients', {
    GET: ({ broker }, { query }) => {
      const search = query.get('search');
      return ok(page(broker.clientList().filter((c) => matches(search, c.id, c.username)), query));
    },
  }),
  route('/api/v1/clients/{clientId}', {
    GET: ({ broker }, { params }) => ok(known(broker.clientInfo(params[0]!), 'connected client', params[0]!)),
    DELETE: ({ broker }, { params }) => {
      if (!broker.disconnectClient(params[0]!)) throw new ApiError(404, `no connected client ${JSON.stringify(params[0])}`);
      return ok({ disconnected: params[0] });
    },
  }),
  route('/api/v1/clients/{clientId}/subscriptions', {
    GET: ({ broker }, { params }) => ok({ clientId: params[0], items: known(broker.subscriptionsOf(params[0]!), 'session', params[0]!) }),
    POST: ({ broker }, req) => {
      const b = objectBody(req);
      if (typeof b.filter !== 'string') throw new ApiError(400, 'filter (a string) is required');
      const rh = b.retainHandling ?? 0;
      if (rh !== 0 && rh !== 1 && rh !== 2) throw new ApiError(400, 'retainHandling must be 0, 1 or 2');
      let existed: boolean | undefined;
      try {
        existed = broker.addSubscription(req.params[0]!, {
          filter: b.filter, qos: qosOf(b.qos), noLocal: boolOf('noLocal', b.noLocal),
          retainAsPublished: boolOf('retainAsPublished', b.retainAsPublished), retainHandling: rh,
        });
      } catch (err) {
        if (err instanceof TypeError) throw new ApiError(400, err.message);
        throw err;
      }
      known(existed, 'session', req.params[0]!);
      return ok({ clientId: req.params[0], filter: b.filter, replaced: existed }, existed ? 200 : 201);
    },
    DELETE: ({ broker }, { params, query }) => {
      const filter = query.get('filter');
      if (filter === null || filter === '') throw new ApiError(400, 'the filter query parameter is required');
      const removed = known(broker.removeSubscription(params[0]!, filter), 'session', params[0]!);
      if (!removed) throw new ApiError(404, `client ${JSON.stringify(params[0])} has no subscription ${JSON.stringify(filter)}`);
      return ok({ clientId: params[0], removed: filter });
    },
  }),
  route('/api/v1/sessions', {
    GET: ({ broker }, { query }) => {
      const search = query.get('search');
      return ok(page(broker.sessionList().filter((s) => matches(search, s.clientId, s.username)), query));
    },
  }),
  route('/api/v1/sessions/{clientId}', {
    GET: ({ broker }, { params }) => ok(known(broker.sessionInfo(params[0]!), 'session', params[0]!)),
    DELETE: ({ broker }, { params }) => {
      if (!broker.deleteSession(params[0]!)) throw new ApiError(404, `no session ${JSON.stringify(params[0])}`);
      return ok({ deleted: params[0] });
    },
  }),
  route('/api/v1/retained', {
    GET: ({ broker }, { query }) => {
      const filter = query.get('filter') ?? '#';
      let all: Message[];
      try {
        all = [...broker.retainedMessages(filter)];
      } catch (err) {
        if (err instanceof TypeError) throw new ApiError(400, `invalid topic filter ${JSON.stringify(filter)}`);
        throw err;
      }
      all.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
      const p = page(all, query);
      return ok({ ...p, filter, items: p.items.map(messageJson) });
    },
  }),
  route('/api/v1/retained/message', {
    GET: ({ broker }, { query }) => {
      const topic = topicParam(query);
      return ok(messageJson(known(broker.retainedMessage(topic), 'retained message on', topic)));
    },
    DELETE: ({ broker }, { query }) => {
      const topic = topicParam(query);
      if (!broker.deleteRetained(topic)) throw new ApiError(404, `no retained message on ${JSON.stringify(topic)}`);
      return ok({ deleted: topic });
    },
  }),
  route('/api/v1/publish', {
    POST: ({ broker }, req) => {
      const b = objectBody(req);
      if (typeof b.topic !== 'string' || !isValidTopicName(b.topic)) throw new ApiError(400, `invalid topic name ${JSON.stringify(b.topic)}`);
      const encoding = b.encoding ?? 'utf8';
      if (encoding !== 'utf8' && encoding !== 'base64') throw new ApiError(400, 'encoding must be "utf8" or "base64"');
      const p = b.payload ?? '';
      if (typeof p !== 'string') throw new ApiError(400, 'payload must be a string (UTF-8 text, or base64 with "encoding": "base64")');
      if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(p.replace(/\s+/g, ''))) throw new ApiError(400, 'payload is not valid base64');
      const payload = encoding === 'base64' ? Buffer.from(p, 'base64') : Buffer.from(p, 'utf8');
      const matched = broker.publish({ topic: b.topic, payload, qos: qosOf(b.qos), retain: boolOf('retain', b.retain) });
      return ok({ topic: b.topic, bytes: payload.length, matched });
    },
  }),
];
