/**
 * mosquitto.conf's security settings → `SecurityOptions` with their files loaded.
 *
 * mosquitto 2.0's defaults: while no listener is configured the broker listens on loopback only and
 * allows anonymous access; once a listener is configured `allow_anonymous` defaults to false (per
 * listener too, with `per_listener_settings true`).
 */
import type { Logger } from '../broker/log.js';
import type { BrokerConfig, ListenerConfig } from '../config/options.js';
import { FileAuth, type ListenerSecurity, type SecurityOptions } from './hooks.js';
import { LoginThrottle, type ThrottleOptions } from './throttle.js';

/**
 * Builds and loads the security settings for `listeners` (the config's listener of each, undefined for
 * one made by `-p` or the default loopback listener). Throws, naming the file, when a password or ACL
 * file cannot be read or parsed. `previous` keeps the failed-login counts across a reload when the
 * throttle settings did not change.
 */
export async function loadSecurity(
  cfg: BrokerConfig,
  listeners: ReadonlyArray<{ readonly config: ListenerConfig | undefined; readonly port: number }>,
  log: Logger,
  previous?: SecurityOptions,
): Promise<SecurityOptions> {
  const configured = cfg.listeners.length > 0;
  const perListener = cfg.perListenerSettings;
  const files: FileAuth[] = [];
  const make = (allowAnonymous: boolean, passwordFile: string | undefined, aclFile: string | undefined): FileAuth => {
    const a = new FileAuth({ allowAnonymous, passwordFile, aclFile }, log);
    files.push(a);
    return a;
  };
  const global = perListener ? undefined : make(cfg.allowAnonymous ?? !configured, cfg.passwordFile, cfg.aclFile);
  const ls: ListenerSecurity[] = listeners.map(({ config: l, port }) => {
    const s: ListenerSecurity = { port };
    if (perListener && l !== undefined) s.auth = make(l.allowAnonymous ?? false, l.passwordFile, l.aclFile);
    if (l?.certfile !== undefined) {
      if (l.useIdentityAsUsername) s.certificateUsername = 'identity';
      else if (l.useSubjectAsUsername) s.certificateUsername = 'subject';
    }
    return s;
  });
  await Promise.all(files.map((f) => f.load()));
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
