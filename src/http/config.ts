/**
 * The broker CLI's HTTP listeners, from mosquitto.conf's Midge-only keys: `http_listener PORT [ADDRESS]`
 * (with `certfile` / `keyfile` after it for HTTPS), `http_admin_user NAME` (users of the broker's
 * `password_file`), `http_token_file PATH`, `http_metrics_token_file PATH`.
 */
import { readFileSync } from 'node:fs';
import type { Broker } from '../broker/broker.js';
import type { Logger } from '../broker/log.js';
import type { BrokerConfig } from '../config/options.js';
import { keyLocation } from '../config/parse.js';
import { checkPassword, loadPasswordFile } from '../auth/password-file.js';
import { shortenPath } from '../util/text.js';
import type { HttpAuthOptions } from './auth.js';
import type { BridgeInfo, HttpListener } from './server.js';

/** A token file's first line, trimmed; an empty or unreadable file is an error naming the key (never the contents). */
function readToken(path: string, key: string, cfg: BrokerConfig): string {
  const at = keyLocation(cfg, key);
  const where = at !== undefined ? ` (${key} in ${at.file}:${at.line})` : '';
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`Error: Unable to read ${key} "${shortenPath(path)}" (${(err as NodeJS.ErrnoException).code ?? String(err)})${where}.`);
  }
  const token = (text.split(/\r?\n/)[0] ?? '').trim();
  if (token.length < 16) throw new Error(`Error: ${key} "${shortenPath(path)}" must hold a token of at least 16 characters on its first line${where}.`);
  return token;
}

/** The credentials of the HTTP listeners, read from the files the config names. */
export async function loadHttpAuth(cfg: BrokerConfig): Promise<HttpAuthOptions> {
  const auth: HttpAuthOptions = {};
  if (cfg.httpTokenFile !== undefined) auth.token = readToken(cfg.httpTokenFile, 'http_token_file', cfg);
  if (cfg.httpMetricsTokenFile !== undefined) auth.metricsToken = readToken(cfg.httpMetricsTokenFile, 'http_metrics_token_file', cfg);
  if (cfg.httpAdminUsers.length > 0) {
    const file = cfg.passwordFile;
    if (file === undefined) {
      const at = keyLocation(cfg, 'http_admin_user');
      throw new Error(`Error: http_admin_user needs a global password_file to check the admin's password${at !== undefined ? ` (http_admin_user in ${at.file}:${at.line})` : ''}.`);
    }
    const users = (await loadPasswordFile(file)).users;
    const admins = new Set(cfg.httpAdminUsers);
    auth.verifyUser = async (username, password) => {
      const good = await checkPassword(users, username, password);
      if (!good) return false;
      return admins.has(username) ? true : 'not_admin';
    };
  }
  return auth;
}

export interface ConfiguredHttp {
  listeners: HttpListener[];
  /**
   * SIGHUP: read the token and password files again (the listeners stay as they are). A file that fails
   * leaves the previous credentials in force, with an error logged.
   */
  reload(cfg: BrokerConfig): Promise<void>;
}

/** Opens every `http_listener` of the config (none: nothing). Closes those already open if one fails. */
export async function startConfiguredHttp(broker: Broker, cfg: BrokerConfig, log: Logger, bridges?: () => BridgeInfo[]): Promise<ConfiguredHttp> {
  if (cfg.httpListeners.length === 0) return { listeners: [], reload: () => Promise.resolve() };
  // one object shared by every listener: a reload changes it in place
  const auth = await loadHttpAuth(cfg);
  // the HTTP listener's modules (API, dashboard, metrics) load only when one is configured
  const { startHttpListener } = await import('./server.js');
  const open: HttpListener[] = [];
  try {
    for (const h of cfg.httpListeners) {
      let tls: { cert: Buffer; key: Buffer } | undefined;
      if (h.certfile !== undefined && h.keyfile !== undefined) {
        try {
          tls = { cert: readFileSync(h.certfile), key: readFileSync(h.keyfile) };
        } catch (err) {
          throw new Error(`Error: Unable to load the certificate or key of the http_listener on port ${h.port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
        }
      }
      open.push(await startHttpListener(broker, h.sharesWebSocketListener === true
        ? { port: h.port, shareWebSocketListener: true, auth, config: cfg, ...(bridges ? { bridges } : {}) }
        : { port: h.port, host: h.bindAddress ?? '127.0.0.1', tls, auth, config: cfg, ...(bridges ? { bridges } : {}) }));
    }
  } catch (err) {
    await Promise.all(open.map((l) => l.close()));
    throw err;
  }
  log.debug(`${open.length} http listener(s) open.`);
  const reload = async (next: BrokerConfig): Promise<void> => {
    try {
      const fresh = await loadHttpAuth(next);
      delete auth.token;
      delete auth.metricsToken;
      delete auth.verifyUser;
      Object.assign(auth, fresh);
      log.info('Reloaded the http_listener credentials.');
    } catch (err) {
      log.error(`Reload failed for the http_listener credentials, keeping the previous ones: ${(err instanceof Error ? err.message : String(err)).replace(/^Error: /, '')}`);
    }
  };
  return { listeners: open, reload };
}
