/**
 * What Midge can honour of a parsed mosquitto.conf. The parser reads every mosquitto key faithfully;
 * this check turns the settings Midge cannot apply yet into errors (file and line), so that nothing
 * is accepted and then silently ignored. It also returns warnings for settings that are honoured but
 * probably not what the author meant.
 */
import { ConfigError } from './errors.js';
import type { Loc } from './keys.js';
import type { BrokerConfig, ListenerConfig } from './options.js';
import { keyLocation } from './parse.js';

/** Log types Midge can tell apart (notice and information are one level in Midge). */
export const SUPPORTED_LOG_TYPES: ReadonlySet<string> = new Set(['debug', 'error', 'warning', 'notice', 'information', 'websockets', 'none', 'all']);
const UNSUPPORTED_LOG_DESTS = ['syslog', 'topic', 'dlt'];

/** TLS keys that need a TLS listener (one with certfile and keyfile). */
const TLS_ONLY: ReadonlyArray<[keyof ListenerConfig, string]> = [
  ['cafile', 'cafile'], ['capath', 'capath'], ['crlfile', 'crlfile'], ['ciphers', 'ciphers'], ['tlsVersion', 'tls_version'],
  ['requireCertificate', 'require_certificate'], ['useIdentityAsUsername', 'use_identity_as_username'],
  ['useSubjectAsUsername', 'use_subject_as_username'],
];

export interface SupportWarning {
  readonly message: string;
  readonly at?: Loc;
}

/**
 * Throws a ConfigError for the first setting Midge cannot honour; returns warnings for the rest.
 * `cfg` must come from `parseConfig`/`parseConfigFile` (locations are looked up by object).
 */
export function checkSupported(cfg: BrokerConfig): SupportWarning[] {
  const main = cfg.sources[0] ?? '<config>';
  const fail = (detail: string, target: BrokerConfig | ListenerConfig, key: string): never => {
    const at = keyLocation(target, key);
    throw new ConfigError(detail, at?.file ?? main, at?.line ?? 0);
  };
  const notYet = (what: string, target: BrokerConfig | ListenerConfig, key: string, why = ''): never =>
    fail(`${what} is not supported by Midge yet${why}`, target, key);

  if (cfg.upgradeOutgoingQos) notYet('"upgrade_outgoing_qos true"', cfg, 'upgrade_outgoing_qos');
  for (const t of cfg.logTypes) {
    if (!SUPPORTED_LOG_TYPES.has(t)) notYet(`"log_type ${t}"`, cfg, `log_type ${t}`, ' (subscribe lines are part of log_type debug)');
  }
  for (const d of cfg.logDest) {
    const plain = d.startsWith('json:') ? d.slice(5) : d;
    if (UNSUPPORTED_LOG_DESTS.includes(plain)) notYet(`"log_dest ${d.replace(':', ' ')}"`, cfg, `log_dest ${plain}`, ' (use stdout, stderr or file)');
  }
  if (cfg.perListenerSettings && keyLocation(cfg, 'allow_zero_length_clientid') !== undefined) {
    notYet('"allow_zero_length_clientid" with per_listener_settings true', cfg, 'allow_zero_length_clientid',
      ' (it applies to all listeners in Midge; remove it or set per_listener_settings false)');
  }

  const warnings: SupportWarning[] = [];
  const byPort = new Map<number, ListenerConfig>();
  for (const l of cfg.listeners) {
    if (l.protocol !== 'websockets') {
      if (l.websocketsOrigins !== undefined) fail(`"websockets_origin" only applies to a websockets listener, and the listener on port ${l.port} has protocol mqtt`, l, 'websockets_origin');
      if (l.httpDir !== undefined) fail(`"http_dir" only applies to a websockets listener, and the listener on port ${l.port} has protocol mqtt`, l, 'http_dir');
    }
    if (l.mountPoint !== undefined) notYet('"mount_point"', l, 'mount_point');
    const isTls = l.certfile !== undefined && l.keyfile !== undefined;
    if (!isTls) {
      for (const [field, key] of TLS_ONLY) {
        const v = l[field];
        if (v !== undefined && v !== false) {
          fail(`"${key}" only applies to a TLS listener, and the listener on port ${l.port} has no certfile and keyfile`, l, key);
        }
      }
    } else if ((l.useIdentityAsUsername || l.useSubjectAsUsername) && !l.requireCertificate) {
      const key = l.useIdentityAsUsername ? 'use_identity_as_username' : 'use_subject_as_username';
      warnings.push({
        message: `${key} without require_certificate true: the listener on port ${l.port} asks for no client certificate, so every client of it is refused (as in mosquitto)`,
        at: keyLocation(l, key),
      });
    }
    if (cfg.perListenerSettings && l.port !== 0) {
      const other = byPort.get(l.port);
      if (other !== undefined) {
        fail(`With per_listener_settings true, Midge tells listeners apart by port; port ${l.port} is used by two listeners`, l, 'listener');
      }
      byPort.set(l.port, l);
    }
  }
  if (cfg.clusterRedis === undefined) {
    for (const [set, key] of [[cfg.clusterNodeId !== undefined, 'cluster_node_id'], [keyLocation(cfg, 'cluster_prefix') !== undefined, 'cluster_prefix']] as const) {
      if (set) warnings.push({ message: `${key} without cluster_redis changes nothing: this broker is a single node`, at: keyLocation(cfg, key) });
    }
  }
  if (cfg.failedLoginDelay > 0 && cfg.failedLoginDelayMax < cfg.failedLoginDelay) {
    fail(`midge_failed_login_delay_max (${cfg.failedLoginDelayMax}) must not be less than midge_failed_login_delay (${cfg.failedLoginDelay})`,
      cfg, keyLocation(cfg, 'midge_failed_login_delay_max') !== undefined ? 'midge_failed_login_delay_max' : 'midge_failed_login_delay');
  }
  return warnings;
}
