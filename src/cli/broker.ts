import { hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Store } from '../store/store.js';
import { createBroker } from '../broker/broker.js';
import type { Logger } from '../broker/log.js';
import { defaultBrokerOptions, type BrokerOptions } from '../broker/options.js';
import { keyLocation, parseConfigFile } from '../config/parse.js';
import { defaultBrokerConfig, type BrokerConfig, type ListenerConfig } from '../config/options.js';
import { checkSupported } from '../config/support.js';
import { createConfiguredLogger, type ConfiguredLogger } from '../config/logging.js';
import { Security } from '../auth/hooks.js';
import { loadSecurity } from '../auth/config.js';
import { loadTlsOptions, reloadTlsListener, type ListenerTls } from '../transport/tls.js';
import type { ListenerSpec } from '../transport/listen.js';
import { shorten } from '../util/text.js';
import { nodeIdProblem, redisUrlProblem } from '../config/cluster.js';
import { redactRedisUrl } from '../store/redis-url.js';
import { startConfiguredHttp } from '../http/config.js';
import type { ConfiguredHttp } from '../http/config.js';
import { BridgeManager } from '../bridge/index.js';

const USAGE = `midge broker is an MQTT v5.0/v3.1.1/v3.1 broker (mosquitto-compatible).

Usage: midge broker [-c config_file] [-d] [-h] [-p port] [-v] [--redis URL] [--node-id NAME]

 -c : specify the broker config file.
 -d : put the broker into the background after starting (not supported: use your service manager).
 -h : display this help.
 -p : start the broker listening on the specified port.
      Not recommended in conjunction with the -c option.
 -v : verbose mode - enable all logging types. This overrides
      any logging options given in the config file.
 --test-config : test config file and exit
 --redis URL : run as a node of a cluster whose state is in this Redis (sets cluster_redis,
               overriding the config file): redis://[user:pass@]HOST[:PORT][/DB], rediss://...
               (TLS) or redis+sentinel://[user:pass@]H1:P1[,H2:P2...]/MASTERNAME[/DB]
 --node-id NAME : this node's name in the cluster (sets cluster_node_id; default: the host name
                  and the port of the first listener)

SIGHUP reloads the password, ACL and certificate files named in the config file (and reopens the log file),
and starts, stops or restarts the bridges whose connection blocks were added, removed or changed.
`;

export interface Flags {
  config?: string; ports: number[]; verbose: boolean; testConfig: boolean;
  /** --redis URL: cluster_redis, overriding the config file */
  redis?: string;
  /** --node-id NAME: cluster_node_id, overriding the config file */
  nodeId?: string;
}

/** The command line, or the error message (mosquitto's style) for a bad one. */
export function parseFlags(argv: string[]): Flags | string {
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
      case '--redis': {
        if (i + 1 >= argv.length) return 'Error: --redis argument given, but no Redis URL specified.';
        const v = argv[++i]!;
        const why = redisUrlProblem(v);
        if (why !== undefined) return `Error: Invalid Redis URL specified (${shorten(redactRedisUrl(v))}): ${why}.`;
        f.redis = v;
        break;
      }
      case '--node-id': {
        if (i + 1 >= argv.length) return 'Error: --node-id argument given, but no node id specified.';
        const v = argv[++i]!;
        const why = nodeIdProblem(v);
        if (why !== undefined) return `Error: Invalid node id specified (${shorten(v)}): ${why}.`;
        f.nodeId = v;
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

/** One listener to open, with the config entry it came from (none for `-p` and the default listener). */
interface Planned { spec: ListenerSpec; config: ListenerConfig | undefined }

/** The config's TLS files of a listener, read and checked; errors name the config line. */
function tlsOf(l: ListenerConfig): ListenerTls {
  try {
    return loadTlsOptions({
      certfile: l.certfile!, keyfile: l.keyfile!, cafile: l.cafile, capath: l.capath, crlfile: l.crlfile,
      ciphers: l.ciphers, tlsVersion: l.tlsVersion, requireCertificate: l.requireCertificate,
    });
  } catch (err) {
    const at = keyLocation(l, 'listener') ?? keyLocation(l, 'certfile');
    const where = at !== undefined ? ` (listener on port ${l.port} at ${at.file}:${at.line})` : '';
    throw new Error(`${err instanceof Error ? err.message : String(err)}${where}`);
  }
}

/** http_dir must be a readable directory when the broker starts (the error names the config line). */
function httpDirOf(l: ListenerConfig): string {
  const dir = l.httpDir!;
  let why: string | undefined;
  try {
    if (!statSync(dir).isDirectory()) why = 'not a directory';
  } catch (err) {
    why = (err as NodeJS.ErrnoException).code ?? String(err);
  }
  if (why !== undefined) {
    const at = keyLocation(l, 'http_dir');
    throw new Error(`Error: Unable to use http_dir "${dir}" (${why})${at !== undefined ? ` in ${at.file}:${at.line}` : ''}.`);
  }
  return dir;
}

/** Listeners from the config and -p, with mosquitto 2.0's default of 1883 on loopback only. */
export function planListeners(cfg: BrokerConfig, flags: Pick<Flags, 'ports'>): Planned[] {
  if (flags.ports.length > 0) {
    if (cfg.perListenerSettings) throw new Error('Error: -p cannot be combined with per_listener_settings true; configure the listeners in the config file.');
    // -p replaces the configured ports; without a configured listener, listen on loopback only (mosquitto 2.0)
    const configured = cfg.listeners.length > 0;
    return flags.ports.map((port) => ({ spec: { port, host: configured ? undefined : '127.0.0.1' }, config: undefined }));
  }
  if (cfg.listeners.length === 0) return [{ spec: { port: 1883, host: '127.0.0.1' }, config: undefined }];
  return cfg.listeners.map((l) => {
    const spec: ListenerSpec = { port: l.port };
    if (l.bindAddress !== undefined) spec.host = l.bindAddress;
    if (l.socketDomain !== undefined) spec.socketDomain = l.socketDomain;
    if (l.maxConnections > 0) spec.maxConnections = l.maxConnections; // 0 is unlimited, as in mosquitto
    if (l.protocol === 'websockets') {
      spec.protocol = 'websockets';
      if (l.websocketsOrigins !== undefined) spec.websocketsOrigins = [...l.websocketsOrigins];
      if (l.httpDir !== undefined) spec.httpDir = httpDirOf(l);
      if (cfg.websocketsHeadersSize > 0) spec.websocketsHeadersSize = cfg.websocketsHeadersSize;
    }
    if (l.certfile !== undefined && l.keyfile !== undefined) {
      spec.tls = tlsOf(l);
      spec.useIdentityAsUsername = l.useIdentityAsUsername;
      spec.useSubjectAsUsername = l.useSubjectAsUsername;
    }
    return { spec, config: l };
  });
}

/** mosquitto.conf → broker options (hooks are added by the caller). */
export function optionsFromConfig(cfg: BrokerConfig, planned: Planned[], logger: Logger): BrokerOptions {
  const o = defaultBrokerOptions();
  o.listeners = planned.map((p) => p.spec);
  o.maxInflightMessages = cfg.maxInflightMessages;
  o.maxQueuedMessages = cfg.maxQueuedMessages;
  o.maxQueuedBytes = cfg.maxQueuedBytes;
  o.maxInflightBytes = cfg.maxInflightBytes;
  o.memoryLimit = cfg.memoryLimit;
  o.globalMaxConnections = cfg.globalMaxConnections;
  o.globalMaxClients = cfg.globalMaxClients;
  o.maxRetainedMessages = cfg.maxRetainedMessages;
  o.maxRetainedBytes = cfg.maxRetainedBytes;
  o.maxPacketSize = cfg.maxPacketSize;
  o.messageSizeLimit = cfg.messageSizeLimit;
  o.maxKeepalive = cfg.maxKeepalive;
  o.retainAvailable = cfg.retainAvailable;
  o.sysInterval = cfg.sysInterval;
  o.persistentClientExpiration = cfg.persistentClientExpiration;
  o.allowZeroLengthClientid = cfg.allowZeroLengthClientid;
  o.queueQos0Messages = cfg.queueQos0Messages;
  o.connectTimeout = cfg.connectTimeout;
  // mosquitto 2.0: anonymous access is allowed only while no listener is configured
  o.allowAnonymous = cfg.allowAnonymous ?? cfg.listeners.length === 0;
  o.logger = logger;
  return o;
}

/**
 * Reads the config file (or the defaults), applies the command line's overrides (--redis, --node-id)
 * and checks that Midge can honour all of it.
 */
export function loadConfig(flags: Flags, warn: (msg: string) => void): BrokerConfig {
  const cfg = flags.config !== undefined ? parseConfigFile(flags.config) : defaultBrokerConfig();
  if (flags.redis !== undefined) cfg.clusterRedis = flags.redis;
  if (flags.nodeId !== undefined) cfg.clusterNodeId = flags.nodeId;
  for (const w of checkSupported(cfg)) warn(`${w.message}${w.at !== undefined ? ` (${w.at.file}:${w.at.line})` : ''}.`);
  return cfg;
}

/** `user`: when started as root, switch to this user and its primary group (after opening the listeners). */
function dropPrivileges(user: string | undefined, log: Logger): void {
  if (user === undefined || user === 'root' || process.getuid?.() !== 0) return;
  const entry = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((f) => f[0] === user);
  if (entry === undefined) throw new Error(`Error: Invalid user '${shorten(user)}'.`);
  const uid = Number(entry[2]);
  const gid = Number(entry[3]);
  (process as { initgroups?: (user: string, group: number) => void }).initgroups?.(user, gid);
  process.setgid!(gid);
  process.setuid!(uid);
  log.info(`Changed to user ${user} (uid ${uid}, gid ${gid}).`);
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) { process.stdout.write(USAGE); return 0; }
  const flags = parseFlags(argv);
  if (typeof flags === 'string') { console.error(flags); return 1; }
  let cfg: BrokerConfig;
  let log: ConfiguredLogger;
  let planned: Planned[];
  let security: Security;
  let opts: BrokerOptions;
  const early: string[] = [];
  try {
    cfg = loadConfig(flags, (m) => early.push(m));
    log = createConfiguredLogger(cfg, flags.verbose);
    for (const m of early) log.logger.warning(m);
    planned = planListeners(cfg, flags);
    const secOpts = await loadSecurity(cfg, planned.map((p) => ({ config: p.config, port: p.spec.port })), log.logger);
    security = new Security(secOpts, log.logger);
    opts = optionsFromConfig(cfg, planned, log.logger);
    opts.hooks = security.hooks();
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
  const logger = log.logger;
  if (flags.testConfig) { console.error('Configuration file is valid.'); log.close(); return 0; }
  const cluster = clusterSettings(cfg, planned);
  if (cluster !== undefined) {
    // the cluster's state is in Redis: a node that cannot reach it does not start
    try {
      if (cfg.persistence) logger.info('Cluster: state is kept in Redis; persistence_file is not used.');
      const { openCluster } = await import('../cluster/index.js');
      const { store, bus } = await openCluster(cluster);
      opts.store = store;
      opts.bus = bus;
    } catch (err) {
      logger.error(`Cluster: cannot start node ${cluster.nodeId}: ${(err instanceof Error ? err.message : String(err)).replace(/^Error: /, '')}`);
      log.close();
      return 1;
    }
  } else if (cfg.persistence) {
    // never a broker that runs without the durability it was asked for: a store that cannot open ends it
    try {
      opts.store = await openPersistence(cfg, logger);
    } catch (err) {
      logger.error((err instanceof Error ? err.message : String(err)).replace(/^Error: /, ''));
      log.close();
      return 1;
    }
  }
  const broker = createBroker(opts);
  broker.topicAliasMaximum = cfg.maxTopicAlias;
  logger.info(`${opts.version} starting`);
  logger.info(flags.config !== undefined ? `Config loaded from ${flags.config}.` : 'Using default config.');
  if (cfg.pidFile !== undefined) {
    try {
      writeFileSync(cfg.pidFile, `${process.pid}\n`);
    } catch (err) {
      logger.error(`Unable to write pid file ${cfg.pidFile} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
      await broker.close();
      return 1;
    }
  }
  // SIGHUP's default action ends the process: handle it from the start; a reload waits for startup
  let started!: () => void;
  let reloading = new Promise<void>((r) => { started = r; });
  let http: ConfiguredHttp | undefined;
  const bridges = new BridgeManager(broker, logger, cfg.sysInterval);
  const onHup = (): void => {
    reloading = reloading.then(() => reload(flags, cfg, planned, security, log, bridges)).then((next) => { if (next) cfg = next; })
      .then(() => http?.reload(cfg));
  };
  process.on('SIGHUP', onHup);
  const removePid = (): void => { if (cfg.pidFile !== undefined) try { unlinkSync(cfg.pidFile); } catch { /* already gone */ } };
  // SIGTERM / SIGINT from the start: one that arrives while the listeners open (or the bridges start) stops
  // the broker as soon as it is up, cleanly, instead of killing the process with its pid file left behind
  let stopNow: (() => void) | undefined;
  let stopAsked = false;
  const onStopSignal = (): void => { stopAsked = true; stopNow?.(); };
  process.once('SIGINT', onStopSignal);
  process.once('SIGTERM', onStopSignal);
  try {
    const bound = await broker.listen();
    security.setBoundPorts(bound.map((a) => a.port));
    http = await startConfiguredHttp(broker, cfg, logger, () => [...bridges.stats()].map(([name, s]) => ({ name, ...s })));
    dropPrivileges(cfg.user, logger);
  } catch (err) {
    logger.error((err instanceof Error ? err.message : String(err)).replace(/^Error: /, ''));
    process.off('SIGHUP', onHup);
    process.off('SIGINT', onStopSignal);
    process.off('SIGTERM', onStopSignal);
    await Promise.all((http?.listeners ?? []).map((h) => h.close()));
    await broker.close();
    removePid();
    log.close();
    return 1;
  }
  logger.info(`${opts.version} running`);
  await bridges.apply(cfg.bridges);
  started();
  // per_listener_settings: a durable session keeps the ACL of the listener it last connected on
  broker.on('disconnect', (client) => security.forget(client, broker.sessions.has(client.id)));
  const pruneTimer = setInterval(() => security.prune((id) => broker.sessions.has(id)), 60_000);
  pruneTimer.unref();

  return new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', onStopSignal);
      process.off('SIGTERM', onStopSignal);
      logger.info(`${opts.version} terminating`);
      process.off('SIGHUP', onHup);
      clearInterval(pruneTimer);
      removePid();
      bridges.close().catch(() => undefined).then(() => Promise.all((http?.listeners ?? []).map((h) => h.close()))).then(() => broker.close()).then(() => 0, () => 1).then((code) => {
        log.close();
        resolve(code);
      });
    };
    stopNow = stop;
    if (stopAsked) stop();
  });
}

/**
 * SIGHUP: re-read the config file, then the password, ACL and certificate files it names; connected
 * clients stay. A config or file that fails leaves the previous settings in force, with an error logged.
 * Listener changes (ports, addresses, TLS or not) and limits need a restart. Resolves with the config
 * now in force when it changed.
 */
async function reload(flags: Flags, current: BrokerConfig, planned: Planned[], security: Security,
  log: ConfiguredLogger, bridges: BridgeManager): Promise<BrokerConfig | undefined> {
  const logger = log.logger;
  logger.info('Reloading config.');
  try {
    log.reopen();
  } catch (err) {
    logger.error(err instanceof Error ? err.message.replace(/^Error: /, '') : String(err));
  }
  let cfg = current;
  if (flags.config !== undefined) {
    try {
      cfg = loadConfig(flags, (m) => logger.warning(m));
    } catch (err) {
      logger.error(`Reload failed, keeping the previous configuration: ${String(err instanceof Error ? err.message : err).replace(/^Error: /, '')}`);
      return undefined;
    }
    // bridges follow the file whatever else happens (they need no restart of the listeners)
    await bridges.apply(cfg.bridges);
    if (cfg.clusterRedis !== current.clusterRedis || cfg.clusterNodeId !== current.clusterNodeId || cfg.clusterPrefix !== current.clusterPrefix) {
      logger.warning('The cluster settings (cluster_redis, cluster_node_id, cluster_prefix) changed in the config file; they are not reloaded (restart the broker).');
      cfg.clusterRedis = current.clusterRedis;
      cfg.clusterNodeId = current.clusterNodeId;
      cfg.clusterPrefix = current.clusterPrefix;
    }
  }
  const layout = (c: BrokerConfig): string => JSON.stringify(c.listeners.map((l) => [l.port, l.bindAddress, l.certfile !== undefined, l.protocol]));
  if (flags.ports.length === 0 && layout(cfg) !== layout(current)) {
    logger.warning('The listeners changed in the config file; listeners are not reloaded (restart the broker). Reloading the security files of the running configuration.');
    cfg = current;
  }
  // the running listeners, paired with the new config's entries for them
  const entries = planned.map((p, i) => ({ ...p, next: p.config === undefined ? undefined : cfg.listeners[i] }));
  let secOpts;
  try {
    secOpts = await loadSecurity(cfg, entries.map((e) => ({ config: e.next, port: e.spec.port })), logger, security.options);
  } catch (err) {
    logger.error(`Reload failed, keeping the previous password and ACL files: ${(err instanceof Error ? err.message : String(err)).replace(/^Error: /, '')}`);
    return undefined;
  }
  let tlsFailed = false;
  for (const e of entries) {
    if (e.spec.tls === undefined || e.next === undefined) continue;
    try {
      const t = tlsOf(e.next);
      reloadTlsListener(e.spec, t);
      e.spec.tls = t;
    } catch (err) {
      tlsFailed = true;
      logger.error(`Reload failed for the certificates of the listener on port ${e.spec.port}, keeping the previous ones: ${(err instanceof Error ? err.message : String(err)).replace(/^Error: /, '')}`);
    }
  }
  security.replace(secOpts);
  logger.info(`Reloaded password, ACL${tlsFailed ? '' : ' and certificate'} files.`);
  return cfg;
}

/** `cluster_redis` (or `--redis`): this node's settings; undefined without a cluster. */
function clusterSettings(cfg: BrokerConfig, planned: Array<{ spec: { port: number } }>): { redis: string; nodeId: string; prefix: string; config: Record<string, string> } | undefined {
  const c = cfg as BrokerConfig & { clusterRedis?: string; clusterNodeId?: string; clusterPrefix?: string };
  const redis = c.clusterRedis;
  if (redis === undefined) return undefined;
  const port = planned[0]?.spec.port ?? 1883;
  // what every node should share, compared at join: the password and ACL files' contents
  const config: Record<string, string> = {};
  for (const [key, file] of [['password_file', cfg.passwordFile], ['acl_file', cfg.aclFile]] as const) {
    if (file === undefined) continue;
    try {
      config[key] = `sha256:${createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16)}`;
    } catch {
      config[key] = 'unreadable';
    }
  }
  return { redis, nodeId: c.clusterNodeId ?? `${hostname()}:${port}`, prefix: c.clusterPrefix ?? 'midge:', config };
}

/**
 * `persistence true`: the SQLite store at persistence_location/persistence_file (the directory is
 * made when missing). Loaded only then, so a broker in memory never loads the native module.
 */
async function openPersistence(cfg: BrokerConfig, logger: Logger): Promise<Store> {
  const dir = cfg.persistenceLocation ?? '.';
  const file = join(dir, cfg.persistenceFile);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new Error(`Unable to create persistence directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? String(err)}.`);
  }
  if (keyLocation(cfg, 'autosave_interval') !== undefined || keyLocation(cfg, 'autosave_on_changes') !== undefined) {
    logger.info('Note: autosave_interval and autosave_on_changes change nothing in Midge: every change is committed before it is acknowledged.');
  }
  // on its own thread: a commit's disk writes and the journal's folds do not block the event loop
  const { openSqliteThreadStore } = await import('../store/sqlite-thread.js');
  const store = await openSqliteThreadStore({ file, fsync: cfg.persistenceFsync });
  logger.info(`Persistence: ${file} (SQLite, ${cfg.persistenceFsync ? 'fsync on every commit' : 'survives a crash of the process; midge_persistence_fsync true for power loss'}).`);
  return store;
}
