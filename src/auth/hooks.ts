/**
 * The broker glue for mosquitto-style security: password file, ACL file, anonymous access, client
 * certificates as usernames, `clientid_prefixes`, per-listener settings and the failed-login throttle,
 * all as one set of `BrokerHooks`.
 *
 * - `FileAuth` is one set of security files (`allow_anonymous`, `password_file`, `acl_file`): the global
 *   one, or one per listener with `per_listener_settings true`.
 * - `Security` owns the hooks. It dispatches on `client.listenerPort` to the listener's settings, and can
 *   swap in a freshly loaded configuration (SIGHUP) without touching connected clients.
 *
 * Refusals follow mosquitto 2.0: CONNACK 5 "not authorised" (v5 0x87) for anonymous, unknown-user and
 * wrong-password attempts and a refused client id prefix; 4 "bad user name or password" (v5 0x86) when a
 * listener that takes the username from the client certificate gets no usable certificate. Log lines
 * name the client id, address and username, never the password.
 */
import type { BrokerHooks, ClientInfo, Message } from '../broker/types.js';
import type { Logger } from '../broker/log.js';
import type { QoS } from '../codec/types.js';
import { type Acl, filterMatches, parseAclFile } from './acl.js';
import { checkPassword, loadPasswordFile, type PasswordEntry } from './password-file.js';
import { LoginThrottle } from './throttle.js';

export interface FileAuthOptions {
  allowAnonymous: boolean;
  passwordFile?: string;
  aclFile?: string;
  /** with `hooks()`: delay before answering a failed login (see LoginThrottle; the maximum is 30 × this) */
  failedLoginDelayMs?: number;
}

export type LoginVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * One set of security files. `load()` reads them; `reload()` re-reads them and keeps the old ones in
 * force when a file is bad.
 */
export class FileAuth {
  private users: ReadonlyMap<string, PasswordEntry> | undefined;
  private acl: Acl | undefined;

  constructor(readonly opts: FileAuthOptions, private readonly log: Logger) {}

  /** Reads the files; throws (and changes nothing) when one cannot be read or parsed. */
  async load(): Promise<void> {
    let users: ReadonlyMap<string, PasswordEntry> | undefined;
    let acl: Acl | undefined;
    if (this.opts.passwordFile !== undefined) {
      const pf = await loadPasswordFile(this.opts.passwordFile).catch((err: unknown) => {
        throw new Error(`Unable to load password file ${describeError(err)}`, { cause: err });
      });
      for (const w of pf.warnings) this.log.warning(`${w.file}:${w.line}: ${w.message}`);
      users = pf.users;
    }
    if (this.opts.aclFile !== undefined) {
      acl = await parseAclFile(this.opts.aclFile).catch((err: unknown) => {
        throw new Error(`Unable to load ACL file ${describeError(err)}`, { cause: err });
      });
    }
    this.users = users;
    this.acl = acl;
  }

  /** Re-read the files; on an error keep what is loaded and report it. Resolves false on an error. */
  async reload(): Promise<boolean> {
    try {
      await this.load();
      this.log.info('Reloaded password and ACL files.');
      return true;
    } catch (err) {
      this.log.error(`reload failed, keeping the previous files: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  /** Checks a login against allow_anonymous and the password file (mosquitto 2.0's rules). */
  async check(username: string | undefined, password: Buffer | undefined): Promise<LoginVerdict> {
    if (username === undefined) {
      return this.opts.allowAnonymous ? OK : { ok: false, reason: 'anonymous access is not allowed' };
    }
    const users = this.users;
    if (this.opts.passwordFile === undefined || users === undefined) {
      return this.opts.allowAnonymous ? OK : { ok: false, reason: 'no password file and anonymous access is not allowed' };
    }
    if (password === undefined) {
      await checkPassword(users, '', ''); // the same cost as a real check
      return { ok: false, reason: 'no password given' };
    }
    if (!users.has(username)) {
      await checkPassword(users, username, password);
      return { ok: false, reason: 'unknown user' };
    }
    return await checkPassword(users, username, password) ? OK : { ok: false, reason: 'wrong password' };
  }

  get hasAcl(): boolean {
    return this.opts.aclFile !== undefined;
  }

  /** ACL write check; true without an ACL file. */
  canWrite(clientId: string, username: string | undefined, topic: string): boolean {
    if (!this.hasAcl) return true;
    return this.acl?.canWrite(clientId, username, topic) ?? false;
  }

  canSubscribe(clientId: string, username: string | undefined, filter: string): boolean {
    if (!this.hasAcl) return true;
    return this.acl?.canSubscribe(clientId, username, filter) ?? false;
  }

  canRead(clientId: string, username: string | undefined, topic: string): boolean {
    if (!this.hasAcl) return true;
    return this.acl?.canRead(clientId, username, topic) ?? false;
  }

  /** Hooks for this one set of files (embedding without listeners' settings). */
  hooks(): BrokerHooks {
    const base = this.opts.failedLoginDelayMs ?? 0;
    return new Security({
      perListener: false, global: this, listeners: [],
      throttle: base > 0 ? new LoginThrottle({ baseDelayMs: base, maxDelayMs: base * 30 }) : undefined,
    }, this.log).hooks();
  }
}

const OK: LoginVerdict = { ok: true };

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How one listener authenticates. */
export interface ListenerSecurity {
  /** the listener's port; `Security.setBoundPorts` replaces 0 with the port actually bound */
  port: number;
  /** with per_listener_settings: this listener's own files */
  auth?: FileAuth;
  /** the username is taken from the verified client certificate, and no password is checked */
  certificateUsername?: 'identity' | 'subject';
}

export interface SecurityOptions {
  /** per_listener_settings: each listener has its own `auth`, found by `client.listenerPort` */
  perListener: boolean;
  /** the files used when not per listener */
  global?: FileAuth;
  listeners: ListenerSecurity[];
  /** only client ids starting with this are accepted (mosquitto's clientid_prefixes) */
  clientidPrefixes?: string;
  throttle?: LoginThrottle;
}

type Scope = { readonly auth: FileAuth | undefined; readonly listener: ListenerSecurity | undefined };

/**
 * The security hooks. `hooks()` returns one stable object; `replace()` swaps the settings under it
 * (a SIGHUP reload), so connected clients are never dropped.
 */
export class Security {
  private opts: SecurityOptions;
  private byPort = new Map<number, ListenerSecurity>();
  /** per listener: the listener each client id last logged in on (durable sessions keep its ACL) */
  private readonly lastListener = new Map<string, { client: ClientInfo; port: number | undefined }>();

  constructor(opts: SecurityOptions, private readonly log: Logger) {
    this.opts = opts;
    this.index();
  }

  /** Swap in new settings (their files already loaded). The bound ports carry over. */
  replace(opts: SecurityOptions): void {
    const bound = this.opts.listeners.map((l) => l.port);
    this.opts = opts;
    if (bound.length === opts.listeners.length) this.setBoundPorts(bound);
    else this.index();
  }

  get options(): SecurityOptions {
    return this.opts;
  }

  /** After listening: the ports actually bound, in listener order (a configured port 0 becomes real). */
  setBoundPorts(ports: readonly number[]): void {
    this.opts.listeners.forEach((l, i) => {
      const p = ports[i];
      if (p !== undefined) l.port = p;
    });
    this.index();
  }

  private index(): void {
    this.byPort = new Map(this.opts.listeners.map((l) => [l.port, l]));
  }

  private scope(listenerPort: number | undefined): Scope {
    const listener = listenerPort === undefined ? undefined : this.byPort.get(listenerPort);
    // per listener, a client of no known listener gets no files: everything is refused
    const auth = this.opts.perListener ? listener?.auth : this.opts.global;
    return { auth, listener };
  }

  private readScope(clientId: string): FileAuth | undefined {
    if (!this.opts.perListener) return this.opts.global;
    const last = this.lastListener.get(clientId);
    return last === undefined ? undefined : this.scope(last.port).auth;
  }

  /** A client's connection ended; forget its listener unless another connection of that id took over. */
  forget(client: ClientInfo, sessionKept: boolean): void {
    const last = this.lastListener.get(client.id);
    if (last !== undefined && last.client === client && !sessionKept) this.lastListener.delete(client.id);
  }

  /** Drop the remembered listeners of client ids that no longer have a session. */
  prune(hasSession: (clientId: string) => boolean): void {
    for (const id of this.lastListener.keys()) if (!hasSession(id)) this.lastListener.delete(id);
  }

  async authenticate(client: ClientInfo, username: string | undefined, password: Buffer | undefined): Promise<{ ok: boolean; returnCode?: number }> {
    const prefix = this.opts.clientidPrefixes;
    if (prefix !== undefined && !client.id.startsWith(prefix)) {
      this.log.warning(`${whoOf(client)} refused: client id does not start with clientid_prefixes '${prefix}'.`);
      return { ok: false, returnCode: 5 };
    }
    const { auth, listener } = this.scope(client.listenerPort);
    if (listener?.certificateUsername !== undefined) {
      // the certificate is the proof: mosquitto checks no password here
      if (client.certificateIdentity === undefined) {
        this.log.warning(`${whoOf(client)} refused: the listener on port ${listener.port} takes the username from the client certificate (use_${listener.certificateUsername}_as_username) and there is no usable certificate.`);
        return { ok: false, returnCode: 4 };
      }
      this.remember(client, listener);
      return { ok: true };
    }
    if (auth === undefined) {
      this.log.warning(`${whoOf(client)}${asUser(username)} refused: no security settings for listener port ${String(client.listenerPort)}.`);
      return { ok: false, returnCode: 5 };
    }
    const throttle = this.opts.throttle;
    if (throttle !== undefined) {
      const admission = throttle.admit(client.remoteAddress);
      if (!admission.admitted) {
        this.log.warning(`${whoOf(client)}${asUser(username)} refused without checking: too many failed logins from ${client.remoteAddress} (${Math.round(admission.waitMs)} ms of answers queued).`);
        return { ok: false, returnCode: 5 };
      }
    }
    const verdict = await auth.check(username, password);
    const wait = throttle?.schedule(client.remoteAddress, !verdict.ok) ?? 0;
    if (!verdict.ok) {
      const delayed = wait > 0 ? ` (answered after ${Math.round(wait)} ms)` : '';
      this.log.warning(`${whoOf(client)} failed to authenticate${asUser(username)}: ${verdict.reason}${delayed}.`);
    }
    if (wait > 0) await sleep(wait);
    if (verdict.ok) this.remember(client, listener);
    return verdict.ok ? { ok: true } : { ok: false, returnCode: 5 };
  }

  private remember(client: ClientInfo, listener: ListenerSecurity | undefined): void {
    if (this.opts.perListener) this.lastListener.set(client.id, { client, port: listener?.port });
  }

  authorizePublish(client: ClientInfo, topic: string): boolean {
    if (!dollarAllowed(topic, true)) return false;
    return this.scope(client.listenerPort).auth?.canWrite(client.id, client.username, topic) ?? false;
  }

  authorizeSubscribe(client: ClientInfo, filter: string): boolean {
    return this.scope(client.listenerPort).auth?.canSubscribe(client.id, client.username, filter) ?? false;
  }

  authorizeRead(session: { readonly clientId: string; readonly username?: string }, message: Message): boolean {
    if (!dollarAllowed(message.topic, false)) return false;
    return this.readScope(session.clientId)?.canRead(session.clientId, session.username, message.topic) ?? false;
  }

  /** One stable hooks object: its functions read the current settings. */
  hooks(): BrokerHooks {
    return {
      authenticate: (client, username, password) => this.authenticate(client, username, password),
      authorizePublish: (client, topic) => this.authorizePublish(client, topic),
      authorizeSubscribe: (client, filter, _qos: QoS) => this.authorizeSubscribe(client, filter),
      authorizeRead: (session, message) => this.authorizeRead(session, message),
    };
  }
}

/**
 * mosquitto's check of `$` topics before any ACL: clients never write to `$SYS` (except a bridge's
 * `$SYS/broker/connection/+/state`), and `$share/...` is never a topic name.
 */
function dollarAllowed(topic: string, write: boolean): boolean {
  if (!topic.startsWith('$')) return true;
  if (topic.startsWith('$SYS')) return !write || filterMatches('$SYS/broker/connection/+/state', topic);
  return !topic.startsWith('$share');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** How refusal lines name the client (built only when a line is written: authenticate runs on every CONNECT). */
function whoOf(client: ClientInfo): string {
  return `Client ${client.id || '<unknown>'} from ${client.remoteAddress}:${client.remotePort}`;
}

function asUser(username: string | undefined): string {
  return username !== undefined ? ` as '${username}'` : '';
}
