/**
 * mosquitto.conf's security settings → `SecurityOptions` with their files loaded.
 *
 * mosquitto 2.0's defaults: while no listener is configured the broker listens on loopback only and
 * allows anonymous access; once a listener is configured `allow_anonymous` defaults to false (per
 * listener too, with `per_listener_settings true`).
 */
import type { Logger } from '../broker/log.js';
import type { BrokerConfig, ListenerConfig } from '../config/options.js';
import { keyLocation } from '../config/parse.js';
import { AclParseError } from './acl.js';
import { FileAuth, type ListenerSecurity, type SecurityOptions } from './hooks.js';
import { PasswordFileError } from './password-file.js';
import { LoginThrottle, type ThrottleOptions } from './throttle.js';

/**
 * Builds and loads the security settings for `listeners` (the config's listener of each, undefined for
 * one made by `-p` or the default loopback listener). Throws, naming the file, when a password or ACL
 * file cannot be read or parsed; the message reads like a config error, with the config line that
 * named the file: `Error: Unable to load password file /etc/midge/passwd: it is a directory (EISDIR)
 * (password_file in /etc/midge/midge.conf:4).` `previous` keeps the failed-login counts across a
 * reload when the throttle settings did not change.
 */
export async function loadSecurity(
  cfg: BrokerConfig,
  listeners: ReadonlyArray<{ readonly config: ListenerConfig | undefined; readonly port: number }>,
  log: Logger,
  previous?: SecurityOptions,
): Promise<SecurityOptions> {
  const configured = cfg.listeners.length > 0;
  const perListener = cfg.perListenerSettings;
  const files: Array<{ auth: FileAuth; from: BrokerConfig | ListenerConfig }> = [];
  const make = (from: BrokerConfig | ListenerConfig, allowAnonymous: boolean): FileAuth => {
    const a = new FileAuth({ allowAnonymous, passwordFile: from.passwordFile, aclFile: from.aclFile }, log);
    files.push({ auth: a, from });
    return a;
  };
  const global = perListener ? undefined : make(cfg, cfg.allowAnonymous ?? !configured);
  const ls: ListenerSecurity[] = listeners.map(({ config: l, port }) => {
    const s: ListenerSecurity = { port };
    if (perListener && l !== undefined) s.auth = make(l, l.allowAnonymous ?? false);
    if (l?.certfile !== undefined) {
      if (l.useIdentityAsUsername) s.certificateUsername = 'identity';
      else if (l.useSubjectAsUsername) s.certificateUsername = 'subject';
    }
    return s;
  });
  await Promise.all(files.map(({ auth, from }) => auth.load().catch((err: unknown) => { throw located(err, from); })));
  const t: ThrottleOptions = {
    baseDelayMs: cfg.failedLoginDelay,
    maxDelayMs: Math.max(cfg.failedLoginDelay, cfg.failedLoginDelayMax),
    halfLifeMs: cfg.failedLoginHalfLife * 1000,
  };
  const old = previous?.throttle;
  const same = old !== undefined && old.opts.baseDelayMs === t.baseDelayMs && old.opts.maxDelayMs === t.maxDelayMs
    && old.opts.halfLifeMs === t.halfLifeMs;
  return {
    perListener,
    global,
    listeners: ls,
    clientidPrefixes: cfg.clientidPrefixes,
    throttle: same ? old : t.baseDelayMs > 0 ? new LoginThrottle(t) : undefined,
  };
}

/** A password or ACL file error as a config error: `Error: ` and the config line that named the file. */
function located(err: unknown, from: BrokerConfig | ListenerConfig): Error {
  const message = err instanceof Error ? err.message : String(err);
  const cause = err instanceof Error ? err.cause : undefined;
  const key = cause instanceof PasswordFileError ? 'password_file' : cause instanceof AclParseError ? 'acl_file' : undefined;
  const at = key !== undefined ? keyLocation(from, key) : undefined;
  return new Error(`Error: ${message}${at !== undefined ? ` (${key} in ${at.file}:${at.line})` : ''}.`, { cause: err });
}
