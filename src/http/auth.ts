/**
 * Who may use the HTTP listener (docs/http.md "Authentication"):
 *
 * - bound to loopback (exactly 127.0.0.1, ::1 or localhost): every endpoint is open, no login;
 * - bound to any other address (127.0.0.2 included, and 0.0.0.0 / ::): `/metrics` is open unless a
 *   metrics token is set, then it needs `Authorization: Bearer <metrics token>` (the admin token and
 *   admin users are accepted too); every other endpoint needs HTTP Basic with an admin user of the
 *   password file, or `Authorization: Bearer <admin token>`.
 *
 * Missing credentials: 401 with WWW-Authenticate; wrong ones: 401; a good password of a user who is not
 * an admin: 403. No password or token ever goes into an answer or a log line.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export interface HttpAuthOptions {
  /** `http_token_file`: the bearer token of the admin API (accepted for /metrics too) */
  token?: string;
  /** `http_metrics_token_file`: a bearer token for /metrics only */
  metricsToken?: string;
  /**
   * HTTP Basic: does this user name and password belong to an admin? (the CLI: a user of the password
   * file named by an `http_admin_user` line, checked against its hash). 'not_admin' when the password is
   * right but the user is no admin (403).
   */
  verifyUser?: (username: string, password: string) => Promise<boolean | 'not_admin'> | boolean | 'not_admin';
}

/** Exactly these bind addresses count as loopback; anything else (127.0.0.2 too) is "beyond loopback". */
export const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', '::1', 'localhost']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host);
}

export type AuthVerdict =
  | { ok: true; who?: string }
  | { ok: false; status: 401 | 403; error: string; challenge: boolean };

/** A constant-time comparison of two secrets (of any lengths). */
function sameSecret(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Checks one request. `metrics`: the request is for /metrics. */
export async function authorize(req: IncomingMessage, loopback: boolean, metrics: boolean, opts: HttpAuthOptions): Promise<AuthVerdict> {
  if (loopback) return { ok: true };
  if (metrics && opts.metricsToken === undefined) return { ok: true };
  const header = req.headers.authorization;
  if (header === undefined || header.trim() === '') {
    return { ok: false, status: 401, error: 'authentication required', challenge: true };
  }
  const sp = header.indexOf(' ');
  const scheme = (sp < 0 ? header : header.slice(0, sp)).toLowerCase();
  const value = sp < 0 ? '' : header.slice(sp + 1).trim();
  if (scheme === 'bearer') {
    if (value !== '' && opts.token !== undefined && sameSecret(value, opts.token)) return { ok: true, who: 'token' };
    if (metrics && value !== '' && opts.metricsToken !== undefined && sameSecret(value, opts.metricsToken)) return { ok: true, who: 'metrics token' };
    return { ok: false, status: 401, error: 'invalid bearer token', challenge: true };
  }
  if (scheme === 'basic') {
    let decoded: string;
    try {
      decoded = Buffer.from(value, 'base64').toString('utf8');
    } catch {
      decoded = '';
    }
    const colon = decoded.indexOf(':');
    if (colon < 0) return { ok: false, status: 401, error: 'malformed basic credentials', challenge: true };
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const verdict = opts.verifyUser === undefined ? false : await opts.verifyUser(user, password);
    if (verdict === true) return { ok: true, who: user };
    if (verdict === 'not_admin') return { ok: false, status: 403, error: 'this user is not an admin of the broker', challenge: false };
    return { ok: false, status: 401, error: 'invalid user name or password', challenge: true };
  }
  return { ok: false, status: 401, error: 'unsupported authorization scheme (use Basic or Bearer)', challenge: true };
}
