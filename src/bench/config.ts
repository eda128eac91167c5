/**
 * What one `midge bench` run does, as plain data (structured-cloneable: it is sent to the worker
 * threads as is), and the command-line flags that fill it in.
 */
import { availableParallelism } from 'node:os';

export type BenchMode = 'pub' | 'sub' | 'conn' | 'run';

export interface BenchConfig {
  mode: BenchMode;
  host: string;
  port: number;
  /** run: where the subscribers connect (default: host and port); for a bridge between two brokers */
  subHost?: string;
  subPort?: number;
  /** `-p P1,P2,...`: publisher i connects to port P(i mod k) (a cluster's nodes); `port` is P1 */
  pubPorts?: number[];
  /** `--sub-port P1,P2,...` (run): subscriber j connects to port P(j mod k); `subPort` is P1 */
  subPorts?: number[];
  /** connect over WebSocket (ws://HOST:PORT/mqtt, subprotocol mqtt) instead of plain TCP */
  ws: boolean;
  /** MQTT protocol level: 4 = 3.1.1, 5 = 5.0 */
  protocol: 4 | 5;
  username?: string;
  password?: string;
  clientIdPrefix: string;
  keepalive: number;
  pubs: number;
  subs: number;
  /** publisher i publishes to `${topic}/${i % topics}`; subscriber j subscribes to `${topic}/${j % topics}` */
  topics: number;
  topic: string;
  /** subscribers subscribe to `${topic}/#` (every subscriber receives every publisher) */
  wildcard: boolean;
  qos: 0 | 1;
  size: number;
  /** total messages per second over all publishers; 0 = flood */
  rate: number;
  warmup: number;
  duration: number;
  drain: number;
  /** most messages per publisher; 0 = bounded by the duration only */
  count: number;
  /** QoS 1: most unacknowledged PUBLISHes per publisher */
  inflight: number;
  /** most messages a publisher may be ahead of its slowest subscriber; 0 = off (run only) */
  window: number;
  batchBytes: number;
  workers: number;
  // connections
  conns: number;
  connRate: number;
  connInflight: number;
  connTimeout: number;
  setupTimeout: number;
  hold: number;
  /** spread connections to a 127.x host over source addresses 127.0.0.2 .. 127.0.0.(1+srcIps); 0 = auto */
  srcIps: number;
  // retained burst (run)
  retained: number;
  retainedFilter: string;
  /** subscribers connect with clean session false (5.0: clean start false, session expiry 0xFFFFFFFF) */
  persistent: boolean;
  /**
   * run: the persistent subscribers subscribe and disconnect; the publishers send --limit messages
   * each (QoS 1: all acknowledged); then the subscribers reconnect and receive the queue
   */
  offline: boolean;
  json: boolean;
  quiet: boolean;
}

export const HEADER_BYTES = 16;

export function defaultConfig(mode: BenchMode): BenchConfig {
  return {
    mode, host: '127.0.0.1', port: 1883, ws: false, protocol: 4, clientIdPrefix: 'mb', keepalive: 60,
    pubs: mode === 'sub' || mode === 'conn' ? 0 : 1,
    subs: mode === 'pub' || mode === 'conn' ? 0 : 1,
    topics: 1, topic: 'bench', wildcard: false, qos: 0, size: 64, rate: 0,
    warmup: mode === 'run' ? 1 : 0, duration: 10, drain: 1, count: 0, inflight: 64,
    window: mode === 'run' ? 1000 : 0, batchBytes: 65536, workers: 0,
    conns: mode === 'conn' ? 1000 : 0, connRate: 0, connInflight: 64, connTimeout: 10, setupTimeout: 30,
    hold: 2, srcIps: 0, retained: 0, retainedFilter: '#', persistent: false, offline: false, json: false, quiet: false,
  };
}

/** Worker threads to use: one per spare core (the broker under test usually needs one), at most 8. */
export function defaultWorkers(clients: number): number {
  const spare = Math.max(1, availableParallelism() - 1);
  return Math.max(1, Math.min(clients, spare, 8));
}

export const USAGE = `midge bench: a load generator for any MQTT broker.

Usage: midge bench pub  [options]   publishers only (-c N)
       midge bench sub  [options]   subscribers only (-c N); latency from the payload stamp
       midge bench conn [options]   N idle connections (-c N): connect rate, handshake latency
       midge bench run  [options]   a whole scenario: subscribers, then publishers, one timeline

Connection:
  -h, --host HOST         broker address (default 127.0.0.1; nothing else is ever contacted)
  -p, --port PORT         default 1883; a comma list P1,P2,... spreads the publishers (and the
                          subscribers without --sub-port): client i connects to P(i mod k)
      --sub-host HOST     run: the subscribers connect here instead (default: --host), e.g. the
      --sub-port PORT     remote broker of a bridge, while the publishers use --host/--port; a
                          comma list spreads the subscribers over several brokers (cluster nodes)
      --ws                MQTT over WebSocket: ws://HOST:PORT/mqtt, subprotocol mqtt (default: TCP)
  -V, --protocol 4|5      MQTT 3.1.1 (4, default) or 5.0
  -u, --username U        -P, --password P
  -i, --id-prefix P       client id prefix (default mb); ids are P<pid>-<role><index>
  -k, --keepalive S       default 60
Load:
  -c, --count-clients N   clients of this subcommand (pub: publishers, sub: subscribers, conn: connections)
      --pubs N --subs M   run: publishers and subscribers
  -t, --topic PREFIX      default bench
      --topics N          publisher i -> PREFIX/(i mod N), subscriber j <- PREFIX/(j mod N); default 1
      --wildcard          subscribers subscribe to PREFIX/# instead
  -q, --qos 0|1           default 0
  -s, --size BYTES        payload bytes, >= 16 (8 B send time ns, 4 B publisher, 4 B sequence); default 64
  -r, --rate R            total msgs/s over all publishers; 0 = flood (default)
  -d, --duration S        measured seconds (default 10)
      --warmup S          seconds before the measurement (run: 1, else 0)
      --drain S           seconds after it, publishing stopped (default 1)
  -n, --limit N           most messages per publisher (default 0: the duration bounds it)
      --inflight K        QoS 1: most unacknowledged PUBLISHes per publisher (default 64)
      --window W          run: a publisher stays at most W messages ahead of its slowest
                          subscriber (default 1000; 0 = off)
      --batch-bytes B     bytes per socket write (default 65536)
  -w, --workers N         worker threads (default: one per spare core, at most 8)
Connections:
      --conn-rate R       connects/s cap (0 = none)   --conn-inflight C  handshakes at once (64)
      --conn-timeout S    per handshake (10)          --setup-timeout S  whole setup (30)
      --hold S            conn: keep them open S seconds (2)
      --src-ips K         to a 127.x host: source addresses 127.0.0.2..(1+K) (default: auto)
Retained burst (run):
      --retained N        publish N retained messages (QoS 1, distinct topics), then one subscriber
                          to --retained-filter (default '#') receives them all
Durable sessions:
      --persistent        subscribers connect with clean session false (5.0: clean start false,
                          session expiry 0xFFFFFFFF); they disconnect at the end, the session stays
      --offline           run: the subscribers (persistent) subscribe and disconnect; the publishers
                          send --limit messages each; then the subscribers reconnect and receive
                          the queued messages. Reports the publish rate (acknowledged, QoS 1) and
                          the drain rate; --duration bounds each of the two phases
Output:
      --json              one JSON object on stdout
      --quiet             no progress line (it is shown once a second on a TTY)
      --help
`;

type Setter = (c: BenchConfig, v: string) => void;

function num(name: string, lo: number, hi: number, integer = true): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < lo || n > hi || (integer && !Number.isInteger(n))) {
      throw new Error(`bad value for ${name}: '${v}' (${integer ? 'an integer ' : ''}${lo}..${hi})`);
    }
    return n;
  };
}

const VALUED: Record<string, Setter> = {};
const FLAGS: Record<string, (c: BenchConfig) => void> = {
  '--wildcard': (c) => { c.wildcard = true; },
  '--ws': (c) => { c.ws = true; },
  '--json': (c) => { c.json = true; },
  '--quiet': (c) => { c.quiet = true; },
  '--persistent': (c) => { c.persistent = true; },
  '--offline': (c) => { c.offline = true; c.persistent = true; },
};

function def(names: string[], set: Setter): void {
  for (const n of names) VALUED[n] = set;
}

def(['-h', '--host'], (c, v) => { c.host = v; });
/** A port or a comma list of ports (the nodes of a cluster): the first, and the list when there are several. */
function ports(name: string, v: string): [number, number[] | undefined] {
  const list = v.split(',').map((x) => num(name, 1, 65535)(x));
  return [list[0]!, list.length > 1 ? list : undefined];
}
def(['-p', '--port'], (c, v) => {
  [c.port, c.pubPorts] = ports('--port', v);
  if (c.pubPorts === undefined) delete c.pubPorts;
});
def(['--sub-host'], (c, v) => {
  if (v === '') throw new Error('bad value for --sub-host: empty');
  c.subHost = v;
});
def(['--sub-port'], (c, v) => {
  [c.subPort, c.subPorts] = ports('--sub-port', v);
  if (c.subPorts === undefined) delete c.subPorts;
});
def(['-V', '--protocol'], (c, v) => {
  const n = v === 'mqttv311' ? 4 : v === 'mqttv5' ? 5 : num('--protocol', 4, 5)(v);
  c.protocol = n as 4 | 5;
});
def(['-u', '--username'], (c, v) => { c.username = v; });
def(['-P', '--password'], (c, v) => { c.password = v; });
def(['-i', '--id-prefix'], (c, v) => { c.clientIdPrefix = v; });
def(['-k', '--keepalive'], (c, v) => { c.keepalive = num('--keepalive', 0, 65535)(v); });
def(['-c', '--count-clients'], (c, v) => {
  const n = num('-c', 1, 1_000_000)(v);
  if (c.mode === 'pub') c.pubs = n;
  else if (c.mode === 'sub') c.subs = n;
  else if (c.mode === 'conn') c.conns = n;
  else throw new Error('-c is for pub, sub and conn; run takes --pubs and --subs');
});
def(['--pubs'], (c, v) => { c.pubs = num('--pubs', 0, 100_000)(v); });
def(['--subs'], (c, v) => { c.subs = num('--subs', 0, 100_000)(v); });
def(['-t', '--topic'], (c, v) => {
  if (v === '' || /[#+]/.test(v)) throw new Error(`bad topic prefix '${v}' (no wildcards)`);
  c.topic = v;
});
def(['--topics'], (c, v) => { c.topics = num('--topics', 1, 1_000_000)(v); });
def(['-q', '--qos'], (c, v) => { c.qos = num('--qos', 0, 1)(v) as 0 | 1; });
def(['-s', '--size'], (c, v) => { c.size = num('--size', HEADER_BYTES, 16 << 20)(v); });
def(['-r', '--rate'], (c, v) => { c.rate = num('--rate', 0, 1e9, false)(v); });
def(['-d', '--duration'], (c, v) => { c.duration = num('--duration', 0.1, 86400, false)(v); });
def(['--warmup'], (c, v) => { c.warmup = num('--warmup', 0, 3600, false)(v); });
def(['--drain'], (c, v) => { c.drain = num('--drain', 0, 3600, false)(v); });
def(['-n', '--limit'], (c, v) => { c.count = num('--limit', 0, 4_000_000_000)(v); });
def(['--inflight'], (c, v) => { c.inflight = num('--inflight', 1, 65535)(v); });
def(['--window'], (c, v) => { c.window = num('--window', 0, 1e9)(v); });
def(['--batch-bytes'], (c, v) => { c.batchBytes = num('--batch-bytes', 64, 16 << 20)(v); });
def(['-w', '--workers'], (c, v) => { c.workers = num('--workers', 1, 256)(v); });
def(['--conns'], (c, v) => { c.conns = num('--conns', 1, 1_000_000)(v); });
def(['--conn-rate'], (c, v) => { c.connRate = num('--conn-rate', 0, 1e7, false)(v); });
def(['--conn-inflight'], (c, v) => { c.connInflight = num('--conn-inflight', 1, 100_000)(v); });
def(['--conn-timeout'], (c, v) => { c.connTimeout = num('--conn-timeout', 0.1, 600, false)(v); });
def(['--setup-timeout'], (c, v) => { c.setupTimeout = num('--setup-timeout', 1, 3600, false)(v); });
def(['--hold'], (c, v) => { c.hold = num('--hold', 0, 86400, false)(v); });
def(['--src-ips'], (c, v) => { c.srcIps = num('--src-ips', 0, 250)(v); });
def(['--retained'], (c, v) => { c.retained = num('--retained', 0, 10_000_000)(v); });
def(['--retained-filter'], (c, v) => { c.retainedFilter = v; });

/** Parses the flags after the subcommand; throws an Error with a one-line message on bad input. */
export function parseArgs(mode: BenchMode, argv: string[]): BenchConfig {
  const c = defaultConfig(mode);
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i]!;
    let inline: string | undefined;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    if (eq > 0) {
      inline = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const flag = FLAGS[a];
    if (flag !== undefined && inline === undefined) {
      flag(c);
      continue;
    }
    const set = VALUED[a];
    if (set === undefined) throw new Error(`unknown option '${argv[i]!}'`);
    const v = inline ?? argv[++i];
    if (v === undefined) throw new Error(`option ${a} needs a value`);
    set(c, v);
  }
  validate(c);
  return c;
}

function validate(c: BenchConfig): void {
  if (c.mode === 'run') {
    if (c.retained > 0) {
      if (c.pubs < 1) throw new Error('--retained needs --pubs >= 1');
    } else if (c.pubs < 1 || c.subs < 1) {
      throw new Error('run needs --pubs >= 1 and --subs >= 1');
    }
  }
  if (c.mode === 'pub' && c.pubs < 1) throw new Error('pub needs -c >= 1');
  if (c.mode === 'sub' && c.subs < 1) throw new Error('sub needs -c >= 1');
  if (c.mode === 'conn' && c.conns < 1) throw new Error('conn needs -c >= 1');
  if (c.mode !== 'run' && c.retained > 0) throw new Error('--retained is for run');
  if (c.offline) {
    if (c.mode !== 'run') throw new Error('--offline is for run');
    if (c.retained > 0) throw new Error('--offline and --retained do not go together');
    if (c.count < 1) throw new Error('--offline needs --limit N (messages per publisher)');
  }
  if ((c.subHost !== undefined || c.subPort !== undefined) && c.mode !== 'run') throw new Error('--sub-host and --sub-port are for run');
  if (c.persistent && c.mode === 'conn') throw new Error('--persistent is for run, pub and sub');
  if (c.mode !== 'run') c.window = 0; // the window needs the subscribers in this process
}

/** Where the subscribers connect: --sub-host/--sub-port, each defaulting to --host/--port. */
export function subEndpoint(c: BenchConfig): { host: string; port: number } {
  return { host: c.subHost ?? c.host, port: c.subPort ?? c.port };
}

/** The port of publisher `i` (a list given to -p spreads them). */
export function pubPortOf(c: BenchConfig, i: number): number {
  return c.pubPorts !== undefined ? c.pubPorts[i % c.pubPorts.length]! : c.port;
}

/** The port of subscriber `j`: --sub-port's list, else -p's list, else the one port. */
export function subPortOf(c: BenchConfig, j: number): number {
  if (c.subPorts !== undefined) return c.subPorts[j % c.subPorts.length]!;
  if (c.subPort !== undefined) return c.subPort;
  return pubPortOf(c, j);
}

/** The topic publisher `i` publishes to. */
export function pubTopic(c: BenchConfig, i: number): string {
  return `${c.topic}/${i % c.topics}`;
}

/** The filter subscriber `j` subscribes to. */
export function subFilter(c: BenchConfig, j: number): string {
  return c.wildcard ? `${c.topic}/#` : `${c.topic}/${j % c.topics}`;
}

/** Whether every subscriber receives every publisher. */
export function allToAll(c: BenchConfig): boolean {
  return c.wildcard || c.topics === 1;
}

/**
 * Where the last sequence number subscriber j received from publisher i lives in the shared
 * table (one slot per receiving pair): pubs × slotsPerPub entries.
 */
export function slotsPerPub(c: BenchConfig): number {
  return allToAll(c) ? c.subs : Math.ceil(c.subs / c.topics);
}

export function slotOf(c: BenchConfig, perPub: number, pub: number, sub: number): number {
  if (allToAll(c)) return pub * perPub + sub;
  if (pub % c.topics !== sub % c.topics) return -1;
  return pub * perPub + Math.floor(sub / c.topics);
}

/** The subscribers that receive publisher i. */
export function receiversOf(c: BenchConfig, pub: number): number[] {
  const out: number[] = [];
  if (allToAll(c)) {
    for (let j = 0; j < c.subs; j++) out.push(j);
  } else {
    for (let j = pub % c.topics; j < c.subs; j += c.topics) out.push(j);
  }
  return out;
}

export function isLoopback(host: string): boolean {
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === 'localhost';
}
