import { readFileSync } from 'node:fs';
import { createBroker } from '../broker/broker.js';
import { Logger } from '../broker/log.js';
import { defaultBrokerOptions, type BrokerOptions, type ListenerOptions } from '../broker/options.js';
import { parseConfigFile } from '../config/parse.js';
import { defaultBrokerConfig, type BrokerConfig, type ListenerConfig } from '../config/options.js';
import { ConfigError } from '../config/errors.js';
import { FileAuth } from '../auth/hooks.js';

const USAGE = `midge broker is an MQTT v5.0/v3.1.1/v3.1 broker (mosquitto-compatible).

Usage: midge broker [-c config_file] [-d] [-h] [-p port] [-v]

 -c : specify the broker config file.
 -d : put the broker into the background after starting (not supported: use your service manager).
 -h : display this help.
 -p : start the broker listening on the specified port.
      Not recommended in conjunction with the -c option.
 -v : verbose mode - enable all logging types. This overrides
      any logging options given in the config file.
 --test-config : test config file and exit
`;

interface Flags { config?: string; ports: number[]; verbose: boolean; testConfig: boolean }

function parseFlags(argv: string[]): Flags | string {
  const f: Flags = { ports: [], verbose: false, testConfig: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '-c': case '--config-file':
        if (i + 1 >= argv.length) return 'Error: -c argument given, but no config file specified.';
        f.config = argv[++i];
        break;
      case '-p': case '--port': {
        if (i + 1 >= argv.length) return 'Error: -p argument given, but no port specified.';
        const v = argv[++i]!;
        const port = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!(port >= 0 && port <= 65535)) return `Error: Invalid port specified (${v}).`;
        f.ports.push(port);
        break;
      }
      case '-v': case '--verbose': f.verbose = true; break;
      case '--test-config': f.testConfig = true; break;
      case '-d': case '--daemon': return 'Error: -d (daemon) is not supported by midge; run it under your service manager.';
      default: return `Error: Unknown option '${a}'.\n\n${USAGE}`;
    }
  }
  return f;
}

const TLS_VERSIONS: Record<string, 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3'> = { 'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' };

function listenerOptions(l: ListenerConfig): ListenerOptions {
  const o: ListenerOptions = { port: l.port, host: l.bindAddress, maxConnections: l.maxConnections >= 0 ? l.maxConnections : undefined };
  if (l.protocol !== 'mqtt') throw new Error(`Error: listener protocol '${l.protocol}' is not supported by midge yet.`);
  if (l.certfile !== undefined && l.keyfile !== undefined) {
    const v = l.tlsVersion !== undefined ? TLS_VERSIONS[l.tlsVersion] : undefined;
    o.tls = {
      cert: readFileSync(l.certfile), key: readFileSync(l.keyfile),
      ca: l.cafile !== undefined ? readFileSync(l.cafile) : undefined,
      crl: l.crlfile !== undefined ? readFileSync(l.crlfile) : undefined,
      ciphers: l.ciphers, requestCert: l.requireCertificate,
      // mosquitto's tls_version pins one version
      minVersion: v, maxVersion: v,
    };
    o.useIdentityAsUsername = l.useIdentityAsUsername;
    o.useSubjectAsUsername = l.useSubjectAsUsername;
  }
  return o;
}

/** mosquitto.conf + flags → broker options, with mosquitto 2.0's defaults for listeners and anonymous access. */
export function optionsFromConfig(cfg: BrokerConfig, flags: Flags, logger: Logger): BrokerOptions {
  const o = defaultBrokerOptions();
  let listeners = cfg.listeners.map(listenerOptions);
  const configured = listeners.length > 0;
  if (flags.ports.length > 0) {
    // -p replaces the configured ports; without a config, listen on loopback only (mosquitto 2.0)
    listeners = flags.ports.map((port) => ({ port, host: configured ? undefined : '127.0.0.1' }));
  }
  if (listeners.length === 0) listeners = [{ port: 1883, host: '127.0.0.1' }];
  o.listeners = listeners;
  o.maxInflightMessages = cfg.maxInflightMessages;
  o.maxQueuedMessages = cfg.maxQueuedMessages;
  o.maxPacketSize = cfg.maxPacketSize;
  o.messageSizeLimit = cfg.messageSizeLimit;
  o.maxKeepalive = cfg.maxKeepalive;
  o.retainAvailable = cfg.retainAvailable;
  o.sysInterval = cfg.sysInterval;
  o.persistentClientExpiration = cfg.persistentClientExpiration;
  o.allowZeroLengthClientid = cfg.allowZeroLengthClientid;
  o.queueQos0Messages = cfg.queueQos0Messages;
  // mosquitto 2.0: anonymous access is allowed only while no listener is configured
  o.allowAnonymous = cfg.allowAnonymous ?? !configured;
  o.logger = logger;
  return o;
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) { process.stdout.write(USAGE); return 0; }
  const flags = parseFlags(argv);
  if (typeof flags === 'string') { console.error(flags); return 1; }
  let cfg: BrokerConfig;
  try {
    cfg = flags.config !== undefined ? parseConfigFile(flags.config) : defaultBrokerConfig();
  } catch (err) {
    console.error(err instanceof ConfigError || err instanceof Error ? err.message : String(err));
    return 1;
  }
  const logger = new Logger(flags.verbose, cfg.connectionMessages);
  let opts: BrokerOptions;
  let auth: FileAuth;
  try {
    opts = optionsFromConfig(cfg, flags, logger);
    if (cfg.perListenerSettings) throw new Error('Error: per_listener_settings true is not supported by midge yet.');
    auth = new FileAuth({ allowAnonymous: opts.allowAnonymous, passwordFile: cfg.passwordFile, aclFile: cfg.aclFile, failedLoginDelayMs: 1000 }, logger);
    await auth.load();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
  if (flags.testConfig) { console.error('Configuration file is valid.'); return 0; }
  opts.hooks = auth.hooks();
  const broker = createBroker(opts);
  logger.info(`${opts.version} starting`);
  logger.info(flags.config !== undefined ? `Config loaded from ${flags.config}.` : 'Using default config.');
  try {
    await broker.listen();
  } catch (err) {
    logger.info(err instanceof Error ? err.message : String(err));
    await broker.close();
    return 1;
  }
  logger.info(`${opts.version} running`);
  process.on('SIGHUP', () => { logger.info('Reloading config.'); void auth.reload(); });
  return new Promise<number>((resolve) => {
    const stop = (): void => {
      logger.info(`${opts.version} terminating`);
      broker.close().then(() => resolve(0), () => resolve(1));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
