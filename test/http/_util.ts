/**
 * Helpers of the HTTP listener's tests: a `midge broker` process with an `http_listener`, HTTP requests
 * with every wait bounded, and a small Prometheus text-format parser.
 */
import http from 'node:http';
import https from 'node:https';
import { startMidge, type BrokerProcess } from '../helpers/broker-process.js';

export const T = { timeout: 60_000 };

export interface HttpBroker extends BrokerProcess {
  /** e.g. http://127.0.0.1:40123 */
  http: string;
}

/**
 * Starts `midge broker` with `config` (which must have an `http_listener` line, port 0) and reads the
 * HTTP listener's URL from its log.
 */
export async function startHttpBroker(config: string[], verbose = false): Promise<HttpBroker> {
  const b = await startMidge({ config: config.join('\n'), verbose });
  try {
    const line = await b.waitForLog(/Opening https? listen socket on /, 10_000);
    const url = /on (https?:\/\/\S+) /.exec(line)![1]!;
    return Object.assign(b, { http: url });
  } catch (err) {
    await b.stop();
    throw err;
  }
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** the body parsed as JSON (undefined when it is not JSON) */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** for https: the CA to trust */
  ca?: string | Buffer;
}

/** Every reply of this test process, for the "no secret in any answer" checks. */
export const allReplies: Reply[] = [];

/** One HTTP(S) request, answered within 10 s. */
export function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  const u = new URL(url);
  const lib = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(u, {
      method: opts.method ?? 'GET',
      headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      timeout: 10_000,
      ...(opts.ca !== undefined ? { ca: opts.ca, servername: 'localhost' } : {}),
      agent: false,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try { json = JSON.parse(text); } catch { json = undefined; }
        const r: Reply = { status: res.statusCode ?? 0, headers: res.headers, text, json };
        allReplies.push(r);
        resolve(r);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const basic = (user: string, password: string): Record<string, string> =>
  ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

/** One sample of a Prometheus text exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  /** `# TYPE` of each metric family */
  types: Map<string, string>;
  /** the value of the sample with this name whose labels include `labels` (undefined when none) */
  get(name: string, labels?: Record<string, string>): number | undefined;
  /** the sum over every sample of this name whose labels include `labels` */
  sum(name: string, labels?: Record<string, string>): number;
}

/** Parses the Prometheus text format (0.0.4); throws on a line it does not understand. */
export function parsePrometheus(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
      if (m !== null) types.set(m[1]!, m[2]!);
      else if (!/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) throw new Error(`bad comment line: ${line}`);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \d+)?$/.exec(line);
    if (m === null) throw new Error(`bad sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3] !== undefined && m[3] !== '') {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
      let consumed = 0;
      for (let l = re.exec(m[3]); l !== null; l = re.exec(m[3])) {
        labels[l[1]!] = l[2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        consumed += l[0].length;
      }
      if (consumed !== m[3].length) throw new Error(`bad labels: ${line}`);
    }
    const v = m[4]!;
    // Go's ParseFloat (Prometheus) reads NaN and Inf in any case; prom-client writes `Nan`
    const lower = v.toLowerCase();
    const value = lower === '+inf' || lower === 'inf' ? Infinity : lower === '-inf' ? -Infinity : lower === 'nan' ? NaN : Number(v);
    if (Number.isNaN(value) && lower !== 'nan') throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  const has = (s: Sample, labels: Record<string, string>): boolean => Object.entries(labels).every(([k, v]) => s.labels[k] === v);
  return {
    samples,
    types,
    get: (name, labels = {}) => samples.find((s) => s.name === name && has(s, labels))?.value,
    sum: (name, labels = {}) => samples.filter((s) => s.name === name && has(s, labels)).reduce((a, s) => a + s.value, 0),
  };
}

/** GET /metrics, checked and parsed. */
export async function scrape(base: string, headers: Record<string, string> = {}): Promise<Exposition> {
  const r = await request(`${base}/metrics`, { headers });
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.text}`);
  return parsePrometheus(r.text);
}

/** Polls `read` until `ok` holds for its value (at most `timeoutMs`, 50 ms apart); returns the last value. */
export async function until<V>(read: () => Promise<V>, ok: (v: V) => boolean, timeoutMs = 5000): Promise<V> {
  const deadline = Math.round(performance.now()) + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v) || Math.round(performance.now()) > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}
