/**
 * Mosquitto ACL files (`acl_file`), with mosquitto 2.0's semantics. Pure apart from `parseAclFile`.
 *
 *   # comment
 *   topic read public/#            <- rules before any `user` line apply to anonymous clients
 *   user alice
 *   topic readwrite alice/#        <- access is read | write | readwrite (default) | deny
 *   topic deny alice/secret
 *   pattern write devices/%c/up    <- patterns apply to every client; %c = client id, %u = username
 *
 * How a check runs (mosquitto `mosquitto_acl_check` + `acl__check_dollar` + the default ACL check):
 * 1. Writing to `$SYS/...` is refused (except a bridge's `$SYS/broker/connection/+/state`), and so is
 *    reading or writing a `$share/...` topic. Reading `$SYS` needs a rule that names `$SYS`: wildcards
 *    in the first level never match a topic that starts with `$`.
 * 2. The client's own rules (its `user` section, or the anonymous rules when it has no username), deny
 *    rules first: a matching `deny` refuses, a matching rule with the access allows.
 * 3. Then the patterns, deny first, the same way. A client whose id or username contains `+` or `#`
 *    gets nothing from the patterns; a `%u` pattern never applies to a client without a username.
 * 4. Otherwise: refused. An ACL with no rules refuses everything.
 * So `deny` beats any allow in the same list, but an allow in a user's section is reached before a
 * deny pattern (as in mosquitto).
 *
 * Subscriptions: mosquitto 2.0's file ACL grants every SUBSCRIBE and filters messages on delivery with
 * the read check. `canSubscribe` is stricter and answers "could this filter deliver anything?": it is
 * true when the filter overlaps a rule that allows read and the overlap is not wholly inside one
 * `deny` rule that is checked before it. The broker must still call `canRead` for every delivery.
 */
import { readFile } from 'node:fs/promises';
import { fileErrorText, shorten, shortenPath } from '../util/text.js';

export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny';

export interface AclRule {
  readonly kind: 'topic' | 'pattern';
  readonly access: AclAccess;
  /** The filter as written (patterns still contain %c / %u). */
  readonly topic: string;
  /** The `user` section the rule sits in; undefined for anonymous rules and for patterns. */
  readonly user: string | undefined;
  /** 1-based line in the file. */
  readonly line: number;
}

/** An ACL file that cannot be used; `line` is 0 when it cannot be read at all (`reason` says why). */
export class AclParseError extends Error {
  constructor(readonly file: string, readonly line: number, readonly reason: string) {
    super(line > 0 ? `${shortenPath(file)}:${line}: ${reason}` : `${shortenPath(file)}: ${reason}`);
    this.name = new.target.name;
  }
}

const READ = 1;
const WRITE = 2;
const BITS: Record<AclAccess, number> = { read: READ, write: WRITE, readwrite: READ | WRITE, deny: 0 };

/** True if `filter` is a valid MQTT topic filter (`+` and `#` each a whole level, `#` last). */
export function isValidFilter(filter: string): boolean {
  if (filter.length === 0 || Buffer.byteLength(filter, 'utf8') > 65535 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  return levels.every((l, i) => (l === '#' ? i === levels.length - 1 : l === '+' || !/[+#]/.test(l)));
}

/**
 * MQTT matching of a topic name against a filter: `+` is one level, `#` the rest (including the
 * parent level), and a wildcard in the first level does not match a topic that starts with `$`.
 * A topic containing a wildcard never matches.
 */
export function filterMatches(filter: string, topic: string): boolean {
  if (topic.length === 0 || /[+#]/.test(topic)) return false;
  if (topic.startsWith('$') !== filter.startsWith('$')) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

const isWild = (level: string | undefined): boolean => level === '+' || level === '#';
/** At the first level a wildcard never meets a literal starting with `$`. */
const dollarClash = (i: number, a: string | undefined, b: string | undefined): boolean =>
  i === 0 && ((isWild(a) && b !== undefined && b.startsWith('$')) || (isWild(b) && a !== undefined && a.startsWith('$')));

/** The filter matching exactly the topics both filters match, or undefined if there are none. */
export function intersectFilters(a: string, b: string): string | undefined {
  const al = a.split('/');
  const bl = b.split('/');
  const out: string[] = [];
  for (let i = 0; ; i++) {
    const x = al[i];
    const y = bl[i];
    if (dollarClash(i, x, y)) return undefined;
    if (x === '#') return [...out, ...bl.slice(i)].join('/');
    if (y === '#') return [...out, ...al.slice(i)].join('/');
    if (x === undefined && y === undefined) return out.join('/');
    if (x === undefined || y === undefined) return undefined;
    if (x === '+') out.push(y);
    else if (y === '+' || x === y) out.push(x);
    else return undefined;
  }
}

/** True if every topic that `inner` matches is also matched by `outer`. */
export function filterCovers(outer: string, inner: string): boolean {
  const ol = outer.split('/');
  const il = inner.split('/');
  for (let i = 0; ; i++) {
    const x = ol[i];
    const y = il[i];
    if (x === undefined && y === undefined) return true;
    if (dollarClash(i, x, y)) return false;
    if (x === '#') return true;
    if (x === undefined || y === undefined || y === '#') return false;
    if (x !== '+' && x !== y) return false;
  }
}

interface Compiled {
  readonly rule: AclRule;
  readonly bits: number;
  readonly usesUser: boolean;
}

/** Deny rules first, the rest in file order (mosquitto puts deny entries at the front of each list). */
function denyFirst(rules: AclRule[]): Compiled[] {
  const compiled = rules.map((rule) => ({ rule, bits: BITS[rule.access], usesUser: rule.topic.includes('%u') }));
  return [...compiled.filter((c) => c.rule.access === 'deny'), ...compiled.filter((c) => c.rule.access !== 'deny')];
}

interface Filter {
  readonly topic: string;
  readonly bits: number;
}

export class Acl {
  private readonly anonymous: Compiled[] | undefined;
  private readonly users = new Map<string, Compiled[]>();
  private readonly patterns: Compiled[];

  constructor(readonly rules: readonly AclRule[]) {
    const anon = rules.filter((r) => r.kind === 'topic' && r.user === undefined);
    this.anonymous = anon.length > 0 ? denyFirst(anon) : undefined;
    const byUser = new Map<string, AclRule[]>();
    for (const r of rules) {
      if (r.kind === 'topic' && r.user !== undefined) byUser.set(r.user, [...(byUser.get(r.user) ?? []), r]);
    }
    for (const [user, list] of byUser) this.users.set(user, denyFirst(list));
    this.patterns = denyFirst(rules.filter((r) => r.kind === 'pattern'));
  }

  /** May this client receive a message published to `topic`? */
  canRead(clientId: string, username: string | undefined, topic: string): boolean {
    return this.check(clientId, username, topic, READ);
  }

  /** May this client publish to `topic`? */
  canWrite(clientId: string, username: string | undefined, topic: string): boolean {
    return this.check(clientId, username, topic, WRITE);
  }

  /** Could a subscription to `filter` (optionally `$share/<group>/<filter>`) deliver anything? */
  canSubscribe(clientId: string, username: string | undefined, filter: string): boolean {
    let f = filter;
    if (f.startsWith('$share/')) {
      const m = /^\$share\/([^/+#]+)\/(.+)$/.exec(f);
      if (!m || m[2] === undefined) return false;
      f = m[2];
    }
    if (!isValidFilter(f)) return false;
    const own = this.ownFilters(username);
    const patterns = this.patternFilters(clientId, username);
    if (own === undefined && patterns.length === 0) return false;
    const ownDenies = (own ?? []).filter((r) => r.bits === 0);
    const patternDenies = patterns.filter((r) => r.bits === 0);
    const reachable = (allow: Filter, denies: Filter[]): boolean => {
      if ((allow.bits & READ) === 0) return false;
      const overlap = intersectFilters(allow.topic, f);
      return overlap !== undefined && !denies.some((d) => filterCovers(d.topic, overlap));
    };
    if ((own ?? []).some((r) => reachable(r, ownDenies))) return true;
    return patterns.some((r) => reachable(r, [...ownDenies, ...patternDenies]));
  }

  private ownList(username: string | undefined): Compiled[] | undefined {
    return username === undefined ? this.anonymous : this.users.get(username);
  }

  private ownFilters(username: string | undefined): Filter[] | undefined {
    return this.ownList(username)?.map((c) => ({ topic: c.rule.topic, bits: c.bits }));
  }

  /** The patterns with %c / %u filled in, deny first; none for a client with a dangerous id or name. */
  private patternFilters(clientId: string, username: string | undefined): Filter[] {
    if (this.patterns.length === 0) return [];
    if (/[+#]/.test(clientId) || (username !== undefined && /[+#]/.test(username))) return [];
    const out: Filter[] = [];
    for (const c of this.patterns) {
      if (c.usesUser && username === undefined) continue;
      const topic = c.rule.topic.replace(/%([cu])/g, (_, k: string) => (k === 'c' ? clientId : (username ?? '')));
      out.push({ topic, bits: c.bits });
    }
    return out;
  }

  private check(clientId: string, username: string | undefined, topic: string, access: number): boolean {
    if (topic.startsWith('$SYS')) {
      if (access === WRITE && !filterMatches('$SYS/broker/connection/+/state', topic)) return false;
    } else if (topic.startsWith('$share')) {
      return false;
    }
    const own = this.ownList(username);
    if (own === undefined && this.patterns.length === 0) return false;
    for (const c of own ?? []) {
      if (topic.startsWith('$') && !c.rule.topic.startsWith('$')) continue;
      if (!filterMatches(c.rule.topic, topic)) continue;
      if (c.bits === 0) return false;
      if ((c.bits & access) !== 0) return true;
    }
    for (const p of this.patternFilters(clientId, username)) {
      if (!filterMatches(p.topic, topic)) continue;
      if (p.bits === 0) return false;
      if ((p.bits & access) !== 0) return true;
    }
    return false;
  }
}

const ACCESS = new Set<string>(['read', 'write', 'readwrite', 'deny']);

/** Parses the text of an ACL file. `file` is used in error messages. */
export function parseAcl(text: string, file = '<acl file>'): Acl {
  const rules: AclRule[] = [];
  let user: string | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    const content = raw.trim();
    if (content === '' || content.startsWith('#')) return;
    const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(content);
    const keyword = m?.[1] ?? '';
    const rest = (m?.[2] ?? '').trim();
    if (keyword === 'user') {
      if (rest === '') throw new AclParseError(file, line, 'missing username after "user"');
      user = rest;
      return;
    }
    if (keyword !== 'topic' && keyword !== 'pattern') {
      throw new AclParseError(file, line, `invalid line: expected "user", "topic" or "pattern", found "${shorten(keyword)}"`);
    }
    if (rest === '') throw new AclParseError(file, line, `empty topic after "${keyword}"`);
    const parts = /^(\S+)(?:[ \t]+(.*))?$/.exec(rest);
    const first = parts?.[1] ?? '';
    const second = parts?.[2]?.trim();
    let access: AclAccess = 'readwrite';
    let topic = rest;
    if (second !== undefined && second !== '') {
      if (!ACCESS.has(first)) {
        throw new AclParseError(file, line, `invalid access type "${shorten(first)}" (expected read, write, readwrite or deny)`);
      }
      access = first as AclAccess;
      topic = second;
    }
    if (!isValidFilter(topic)) throw new AclParseError(file, line, `invalid topic filter "${shorten(topic)}"`);
    rules.push({ kind: keyword, access, topic, user: keyword === 'topic' ? user : undefined, line });
  });
  return new Acl(rules);
}

/** Reads and parses an ACL file; throws `AclParseError` (line 0 when it cannot be read). */
export async function parseAclFile(path: string): Promise<Acl> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new AclParseError(path, 0, fileErrorText(err));
  }
  return parseAcl(text, path);
}
