/**
 * Redis URLs → ioredis options, for the Redis store and the cluster bus (and checked by the
 * configuration). No ioredis at run time here: the configuration can check a URL without loading it.
 *
 *   redis://[user:pass@]HOST[:PORT][/DB]             plain TCP, port 6379 by default
 *   rediss://[user:pass@]HOST[:PORT][/DB]            TLS (node's default trust unless the caller adds `tls`)
 *   redis+sentinel://[user:pass@]H1[:P1][,H2[:P2]...]/MASTERNAME[/DB]
 *                                                    ask the Sentinels (port 26379 by default) for the
 *                                                    master MASTERNAME; the user and password are the
 *                                                    master's (the Sentinels are asked without credentials)
 *
 * HOST is a name, an IPv4 address or an IPv6 address in brackets. The user and password may be
 * percent-encoded (a `@`, `:` or `/` in a password must be). No query string. Errors never contain
 * the user or password: `redactRedisUrl` replaces them for messages.
 */
import type { RedisOptions } from 'ioredis';

export const REDIS_URL_FORMS =
  'redis://[user:pass@]HOST[:PORT][/DB], rediss://... or redis+sentinel://[user:pass@]H1:P1[,H2:P2...]/MASTERNAME[/DB]';

/** Why a Redis URL is not valid; the message never contains the user or password. */
export class RedisUrlError extends Error {
  override readonly name = 'RedisUrlError';
}

export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
}

export interface ParsedRedisUrl {
  readonly scheme: 'redis' | 'rediss' | 'redis+sentinel';
  /** one for redis / rediss; the Sentinels (one or more) for redis+sentinel */
  readonly hosts: readonly RedisEndpoint[];
  /** redis+sentinel: the master's name */
  readonly masterName?: string;
  readonly db?: number;
  readonly username?: string;
  readonly password?: string;
}

const SCHEMES = ['redis', 'rediss', 'redis+sentinel'] as const;
/** Redis's own ceiling is `databases` (16 by default) and any int; refuse what no Redis can have. */
const MAX_DB = 2147483647;

/** The user and password replaced by `***` (for messages); the rest as given. */
export function redactRedisUrl(url: string): string {
  const start = url.indexOf('://');
  if (start < 0) return url.length > 100 ? `${url.slice(0, 100)}...` : url;
  const from = start + 3;
  let end = url.indexOf('/', from);
  if (end < 0) end = url.length;
  const q = url.indexOf('?', from);
  if (q >= 0 && q < end) end = q;
  const at = url.lastIndexOf('@', end - 1);
  let out = url;
  if (at >= from) {
    const info = url.slice(from, at);
    const colon = info.indexOf(':');
    // a user alone may be a password for some tools: hide it as well
    const shown = colon < 0 ? '***' : `${info.slice(0, colon)}:***`;
    out = `${url.slice(0, from)}${shown}${url.slice(at)}`;
  }
  return out.length > 300 ? `${out.slice(0, 300)}...` : out;
}

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RedisUrlError(`the ${what} is not valid percent-encoding`);
  }
}

function endpoint(text: string, defaultPort: number): RedisEndpoint {
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) throw new RedisUrlError(`the IPv6 address "${text}" has no closing bracket`);
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw new RedisUrlError(`unexpected "${rest}" after the IPv6 address [${host}]`);
    if (rest !== '') portText = rest.slice(1);
    if (!/^[0-9a-fA-F:.]+(%[\w.-]+)?$/.test(host) || !host.includes(':')) throw new RedisUrlError(`"[${host}]" is not an IPv6 address`);
  } else {
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    if (colon >= 0) portText = text.slice(colon + 1);
    if (host === '') throw new RedisUrlError('the host is missing');
    // a name or an IPv4 address: letters, digits, '-', '.', '_' (no spaces, no other punctuation)
    if (!/^[A-Za-z0-9_.-]+$/.test(host)) throw new RedisUrlError(`"${host.length > 100 ? `${host.slice(0, 100)}...` : host}" is not a host name or address`);
  }
  let port = defaultPort;
  if (portText !== undefined) {
    port = /^[0-9]{1,5}$/.test(portText) ? Number(portText) : NaN;
    if (!(port >= 1 && port <= 65535)) {
      throw new RedisUrlError(`the port must be a number from 1 to 65535, not "${portText.length > 20 ? `${portText.slice(0, 20)}...` : portText}"`);
    }
  }
  return { host, port };
}

function database(text: string): number {
  if (!/^[0-9]{1,10}$/.test(text) || Number(text) > MAX_DB) {
    throw new RedisUrlError(`the database must be a non-negative integer, not "${text.length > 20 ? `${text.slice(0, 20)}...` : text}"`);
  }
  return Number(text);
}

/** Parses and checks a Redis URL; throws a RedisUrlError that never shows the credentials. */
export function parseRedisUrl(url: string): ParsedRedisUrl {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (m === null) throw new RedisUrlError(`not a Redis URL (expected ${REDIS_URL_FORMS})`);
  const scheme = m[1]!.toLowerCase();
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new RedisUrlError(`the scheme must be redis, rediss or redis+sentinel, not ${scheme.length > 30 ? `${scheme.slice(0, 30)}...` : scheme}`);
  }
  let rest = url.slice(m[0].length);
  if (/[\s]/.test(rest)) throw new RedisUrlError('a Redis URL contains no spaces');
  if (rest.includes('?') || rest.includes('#')) throw new RedisUrlError('query strings and fragments are not supported in a Redis URL');
  const slash = rest.indexOf('/');
  let authority = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  rest = '';
  let username: string | undefined;
  let password: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const info = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = info.indexOf(':');
    // as ioredis reads it: "user:pass", ":pass" (no user), or "user" alone
    const user = colon < 0 ? info : info.slice(0, colon);
    if (user !== '') username = decode(user, 'user name');
    if (colon >= 0) password = decode(info.slice(colon + 1), 'password');
  }
  if (authority === '') throw new RedisUrlError('the host is missing');
  const sentinel = scheme === 'redis+sentinel';
  const hosts = authority.split(',').map((h) => {
    if (h === '') throw new RedisUrlError('an empty host in the list of Sentinels');
    return endpoint(h, sentinel ? 26379 : 6379);
  });
  if (!sentinel && hosts.length > 1) throw new RedisUrlError(`${scheme}:// takes one host; several are for redis+sentinel://`);
  const parts = path === '' ? [] : path.split('/');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop(); // a trailing slash
  let masterName: string | undefined;
  let db: number | undefined;
  if (sentinel) {
    if (parts.length === 0 || parts[0] === '') throw new RedisUrlError('the master name is missing (redis+sentinel://H1:P1[,H2:P2...]/MASTERNAME[/DB])');
    if (parts.length > 2) throw new RedisUrlError('too many path parts (redis+sentinel://H1:P1[,H2:P2...]/MASTERNAME[/DB])');
    masterName = decode(parts[0]!, 'master name');
    if (parts.length === 2) db = database(parts[1]!);
  } else {
    if (parts.length > 1) throw new RedisUrlError(`too many path parts (${scheme}://HOST[:PORT][/DB])`);
    if (parts.length === 1) db = database(parts[0]!);
  }
  return {
    scheme: scheme as ParsedRedisUrl['scheme'], hosts,
    ...(masterName !== undefined ? { masterName } : {}),
    ...(db !== undefined ? { db } : {}),
    ...(username !== undefined ? { username } : {}),
    ...(password !== undefined ? { password } : {}),
  };
}

const hostText = (e: RedisEndpoint): string => `${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;

/** The URL for messages: scheme, hosts, ports, master name, database; never the user or password. */
export function addressOf(p: ParsedRedisUrl): string {
  const hosts = p.hosts.map(hostText).join(',');
  const path = p.masterName !== undefined ? `/${p.masterName}${p.db !== undefined ? `/${p.db}` : ''}` : p.db !== undefined ? `/${p.db}` : '';
  return `${p.scheme}://${hosts}${path}`;
}

/**
 * The ioredis options a URL stands for (connection only: timeouts, retries and TLS details are the
 * caller's), and its address for messages. `rediss://` sets `tls: {}` (the caller may replace it with
 * its own TLS options). Throws a RedisUrlError naming what is wrong, never the credentials.
 */
export function redisOptionsFromUrl(url: string): { options: RedisOptions; address: string } {
  const p = parseRedisUrl(url);
  const options: RedisOptions = {};
  if (p.scheme === 'redis+sentinel') {
    options.sentinels = p.hosts.map((h) => ({ host: h.host, port: h.port }));
    options.name = p.masterName!;
  } else {
    options.host = p.hosts[0]!.host;
    options.port = p.hosts[0]!.port;
    if (p.scheme === 'rediss') options.tls = {};
  }
  if (p.db !== undefined) options.db = p.db;
  if (p.username !== undefined) options.username = p.username;
  if (p.password !== undefined) options.password = p.password;
  return { options, address: addressOf(p) };
}
