/**
 * The option parser shared by `midge pub`, `midge sub` and `midge rr` (mosquitto's client_shared.c):
 * the same flags, the same checks and the same error texts as mosquitto_pub/sub/rr 2.0. What the
 * commands then do with the result (connect options, error texts, exit codes, `-d`) is in client-connect.ts.
 */
import { readFileSync } from 'node:fs';
import type { Properties, ProtocolVersion, QoS } from '../codec/types.js';
import { isValidTopicFilter, isValidTopicName, MAX_TOPIC_BYTES, MAX_TOPIC_LEVELS } from '../topic/index.js';
import { shorten, shortenPath } from '../util/text.js';
import { malformedUtf8 } from './argv.js';
import {
  applyProperty, emptyPropertyLists, finishProperties, PROPERTY_COMMANDS, type PropertyCommand,
} from '../client/property-names.js';

export type ClientKind = 'pub' | 'sub' | 'rr';
export type PubMode = 'none' | 'cmd' | 'file' | 'stdin-file' | 'stdin-line' | 'null';

/** Everything the command line says, with mosquitto's defaults. */
export class CliConfig {
  host = 'localhost';
  port?: number;
  /** -L mqtts:// */
  secureScheme = false;
  /** pub/rr: the topic; sub: the filters (-t), filters to hide (-T) and to unsubscribe from (-U) */
  topic?: string;
  topics: string[] = [];
  filterOuts: string[] = [];
  unsubTopics: string[] = [];
  responseTopic?: string;
  message?: Buffer;
  pubMode: PubMode = 'none';
  file?: string;
  qos: QoS = 0;
  retain = false;
  id?: string; idPrefix?: string; username?: string; password?: string;
  /** -i / -I / -u that was not valid UTF-8: refused when the client is made, as mosquitto_pub does */
  malformedId = false; malformedUsername = false;
  clean = true;
  keepalive = 60;
  debug = false;
  quiet = false;
  protocolVersion: ProtocolVersion;
  willTopic?: string; willPayload?: string; willQos: QoS = 0; willRetain = false;
  cafile?: string; capath?: string; cert?: string; key?: string; ciphers?: string; alpn?: string; tlsVersion?: string;
  insecure = false;
  tlsUseOsCerts = false;
  bindAddress?: string;
  /** -x; -1 = not given */
  sessionExpiry = -1;
  maxInflight = 20;
  repeatCount = 1;
  /** ms */
  repeatDelay = 0;
  /** sub/rr output and exit conditions */
  verbose = false; eol = true; pretty = false; format?: string;
  msgCount: number;
  /** -W seconds, 0 = none */
  timeout = 0;
  noRetain = false; retainAsPublished = false; retainedOnly = false; removeRetained = false; exitAfterSub = false;
  /** -D properties by command, as given, then (after the checks) as codec properties */
  propLists = emptyPropertyLists();
  props = Object.fromEntries(PROPERTY_COMMANDS.map((c) => [c, {}])) as Record<PropertyCommand, Properties>;

  constructor(readonly kind: ClientKind) {
    this.protocolVersion = kind === 'rr' ? 5 : 4;
    this.msgCount = kind === 'rr' ? 1 : 0;
  }
}

export type ParseOutcome =
  | { type: 'ok'; config: CliConfig }
  | { type: 'help' }
  | { type: 'version' }
  /** `text` as mosquitto prints it (with its own trailing newlines); the caller adds the usage hint */
  | { type: 'error'; text: string };

/** C's atoi: optional sign and leading digits, anything else is 0. */
export function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m ? Number.parseInt(m[1]!, 10) : 0;
}

const err = (text: string): ParseOutcome => ({ type: 'error', text });

/** Checks a -F format the way mosquitto_sub does before connecting. */
export function checkFormat(f: string): string | undefined {
  for (let i = 0; i < f.length; i++) {
    const c = f[i];
    if (c === '%') {
      if (i === f.length - 1) return 'Error: Incomplete format specifier.\n';
      if (f[i + 1] === '0' || f[i + 1] === '-') { i++; if (i === f.length - 1) return 'Error: Incomplete format specifier.\n'; }
      while (f[i + 1]! >= '0' && f[i + 1]! <= '9') { i++; if (i === f.length - 1) return 'Error: Incomplete format specifier.\n'; }
      if (f[i + 1] === '.') {
        i++;
        if (i === f.length - 1) return 'Error: Incomplete format specifier.\n';
        while (f[i + 1]! >= '0' && f[i + 1]! <= '9') { i++; if (i === f.length - 1) return 'Error: Incomplete format specifier.\n'; }
      }
      if (!'%ACDEFIlmPpqRSrtjJUxX'.includes(f[i + 1]!)) return `Error: Invalid format specifier '${f[i + 1]}'.\n`;
      i++;
    } else if (c === '@') {
      if (i === f.length - 1) return 'Error: Incomplete format specifier.\n';
      i++;
    } else if (c === '\\') {
      if (i === f.length - 1) return 'Error: Incomplete escape specifier.\n';
      if (!'\\0aenrtv'.includes(f[i + 1]!)) return `Error: Invalid escape specifier '${f[i + 1]}'.\n`;
      i++;
    }
  }
  return undefined;
}

/** Flags that take a value: what mosquitto says is missing without one, and which commands know them. */
const VALUE_FLAGS: Record<string, [what: string, only?: ClientKind[]]> = {
  '-A': ['address'], '--cafile': ['file'], '--capath': ['directory'], '--cert': ['file'], '--ciphers': ['ciphers'],
  '-C': ['count', ['sub']], '-e': ['response topic', ['rr']], '-f': ['file', ['pub', 'rr']], '-F': ['format', ['sub', 'rr']],
  '-h': ['host'], '-i': ['id'], '-I': ['id prefix'], '-k': ['keepalive'], '--key': ['file'], '-L': ['URL'],
  '-m': ['message', ['pub', 'rr']], '-M': ['max_inflight'], '-o': ['options file'], '-p': ['port'], '-P': ['password'],
  '-q': ['QoS'], '--repeat': ['count', ['pub']], '--repeat-delay': ['time', ['pub']], '-t': ['topic'],
  '-T': ['topic filter', ['sub']], '--tls-alpn': ['protocol'], '--tls-version': ['version'],
  '-U': ['unsubscribe topic', ['sub']], '-u': ['username'], '-V': ['version'], '-W': ['timeout', ['sub', 'rr']],
  '--will-payload': ['will payload'], '--will-qos': ['will QoS'], '--will-topic': ['will topic'],
  '-x': ['session expiry interval'],
};
function missingValue(flag: string, what: string): string {
  if (flag === '-M') return 'Error: -M argument given but max_inflight not specified.\n\n';
  return `Error: ${flag === '-V' ? '--protocol-version' : flag} argument given but no ${what} specified.\n\n`;
}
const SWITCHES: Record<string, ClientKind[] | undefined> = {
  '-c': undefined, '-d': undefined, '-E': ['sub'], '--insecure': undefined, '-l': ['pub'], '--nodelay': undefined,
  '-n': ['pub', 'rr'], '-N': ['sub', 'rr'], '--pretty': ['sub', 'rr'], '--quiet': undefined, '-r': ['pub'],
  '-R': ['sub', 'rr'], '--remove-retained': ['sub'], '--retain-as-published': ['sub', 'rr'], '--retained-only': ['sub'],
  '-s': ['pub', 'rr'], '--tls-use-os-certs': undefined, '-v': ['sub', 'rr'], '--will-retain': undefined,
};
const ALIASES: Record<string, string> = {
  '--host': '-h', '--port': '-p', '--id': '-i', '--id-prefix': '-I', '--keepalive': '-k', '--qos': '-q',
  '--retain': '-r', '--topic': '-t', '--message': '-m', '--file': '-f', '--stdin-line': '-l', '--stdin-file': '-s',
  '--null-message': '-n', '--username': '-u', '--pw': '-P', '--url': '-L', '--protocol-version': '-V',
  '--debug': '-d', '--disable-clean-session': '-c', '--verbose': '-v', '--filter-out': '-T', '--unsubscribe': '-U',
  '--property': '-D',
};
const UNSUPPORTED = new Set(['--unix', '--proxy', '--psk', '--psk-identity', '--tls-engine', '--keyform',
  '--tls-engine-kpass-sha1', '--random-filter', '-S', '-w', '--watch']);

/** Reads `-o FILE`: one option per line ("flag value"), '#' comments; each argument with its bytes. */
function optionsFile(path: string): { args: string[]; raw: Buffer[] } | ParseOutcome {
  let data: Buffer;
  try { data = readFileSync(path); } catch { return err(`Error: Unable to open options file "${shortenPath(path)}".\n`); }
  const args: string[] = [];
  const raw: Buffer[] = [];
  const add = (b: Buffer): void => { raw.push(b); args.push(b.toString('utf8')); };
  for (let start = 0; start <= data.length;) {
    let end = data.indexOf(0x0a, start);
    if (end < 0) end = data.length;
    let line = data.subarray(start, end);
    start = end + 1;
    if (line.at(-1) === 0x0d) line = line.subarray(0, -1);
    if (line[0] === 0x23 /* # */ || line.toString('latin1').trim() === '') continue;
    const sp = line.indexOf(0x20);
    if (sp < 0) add(line); else { add(line.subarray(0, sp)); add(line.subarray(sp + 1)); }
  }
  return { args, raw };
}

/** Why `topic` is not a valid topic name (or filter), beyond the wildcards; undefined if that is not it. */
function topicProblem(topic: string): string | undefined {
  const bytes = Buffer.byteLength(topic, 'utf8');
  if (bytes > MAX_TOPIC_BYTES) return `it is ${bytes} bytes long, and a topic can be at most ${MAX_TOPIC_BYTES} bytes`;
  let levels = 1;
  for (let i = topic.indexOf('/'); i >= 0; i = topic.indexOf('/', i + 1)) levels++;
  if (levels > MAX_TOPIC_LEVELS) return `it has ${levels} levels, and midge (like mosquitto) allows at most ${MAX_TOPIC_LEVELS}`;
  if (topic.includes('\u0000')) return 'it contains a NUL character';
  return undefined;
}

/** The error for a topic name that is not valid: the real reason when it is not a misplaced wildcard. */
function invalidName(what: string, topic: string): ParseOutcome {
  const why = topicProblem(topic);
  return err(why !== undefined ? `Error: Invalid ${what} '${shorten(topic)}': ${why}.\n`
    : `Error: Invalid ${what} '${shorten(topic)}', does it contain '+' or '#'?\n`);
}

/** The same for a topic filter. */
function invalidFilter(what: string, topic: string): ParseOutcome {
  const why = topicProblem(topic);
  return err(why !== undefined ? `Error: Invalid ${what} '${shorten(topic)}': ${why}.\n`
    : `Error: Invalid ${what} '${shorten(topic)}', are all '+' and '#' wildcards correct?\n`);
}

/** mosquitto's words for an argument that is not valid UTF-8. */
const malformed = (flag: string): ParseOutcome => err(`Error: Malformed UTF-8 in ${flag} argument.\n\n`);

function addTopic(c: CliConfig, type: ClientKind | 'response', topic: string): ParseOutcome | undefined {
  if (type === 'pub' || type === 'rr') {
    if (topic !== '' && !isValidTopicName(topic)) return invalidName('publish topic', topic);
    c.topic = topic;
  } else if (type === 'response') {
    if (!isValidTopicName(topic)) return invalidName('response topic', topic);
    c.responseTopic = topic;
  } else {
    if (!isValidTopicFilter(topic)) return invalidFilter('subscription topic', topic);
    c.topics.push(topic);
  }
  return undefined;
}

/** A port from -p or -L: 1 to 65535 (mosquitto takes any text as 0 and then fails to connect). */
function parsePort(c: CliConfig, v: string): ParseOutcome | undefined {
  if (!/^\s*[+-]?\d+\s*$/.test(v)) return err(`Error: Invalid port given: ${shorten(v)}\n`);
  const port = atoi(v);
  if (port < 1 || port > 65535) return err(`Error: Invalid port given: ${port}\n`);
  c.port = port;
  return undefined;
}

function parseUrl(c: CliConfig, url: string, bad: boolean): ParseOutcome | undefined {
  const m = /^(mqtts?|wss?):\/\//i.exec(url);
  if (!m) return err('Error: unsupported URL scheme.\n\n');
  const scheme = m[1]!.toLowerCase();
  if (scheme.startsWith('ws')) return err('Error: websockets URLs are not supported by -L in midge.\n\n');
  c.secureScheme = scheme === 'mqtts';
  c.port = c.secureScheme ? 8883 : 1883;
  if (c.secureScheme) c.tlsUseOsCerts = true;
  let rest = url.slice(m[0].length);
  const slash = rest.indexOf('/');
  if (slash < 0) return err('Error: Invalid URL for -L argument specified - topic missing.\n');
  if (bad && malformedUtf8(rest.slice(slash + 1), undefined)) return malformed('-L topic');
  const r = addTopic(c, c.kind, rest.slice(slash + 1));
  if (r) return r;
  rest = rest.slice(0, slash);
  const at = rest.indexOf('@');
  if (at >= 0) {
    const auth = rest.slice(0, at);
    const colon = auth.indexOf(':');
    if (colon >= 0) { c.username = auth.slice(0, colon); c.password = auth.slice(colon + 1); } else c.username = auth;
    c.malformedUsername = bad && malformedUtf8(c.username, undefined);
    rest = rest.slice(at + 1);
  }
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    const r = parsePort(c, rest.slice(colon + 1));
    if (r) return r;
    rest = rest.slice(0, colon);
  }
  c.host = rest;
  return undefined;
}

function setMode(c: CliConfig, mode: PubMode): ParseOutcome | undefined {
  if (c.pubMode !== 'none') return err('Error: Only one type of message can be sent at once.\n\n');
  c.pubMode = mode;
  return undefined;
}

/**
 * Applies one flag (with its value, if it takes one); returns an outcome to stop with. `bad`: the value
 * was not valid UTF-8 (see argv.ts).
 */
function apply(c: CliConfig, flag: string, v: string, bad = false): ParseOutcome | undefined {
  switch (flag) {
    case '-A': c.bindAddress = v; break;
    case '--cafile': c.cafile = v; break;
    case '--capath': c.capath = v; break;
    case '--cert': c.cert = v; break;
    case '--ciphers': c.ciphers = v; break;
    case '-C': c.msgCount = atoi(v); if (c.msgCount < 1) return err(`Error: Invalid message count "${c.msgCount}".\n\n`); break;
    case '-c': c.clean = false; break;
    case '-d': c.debug = true; break;
    case '-e': return bad ? malformed('-e') : addTopic(c, 'response', v);
    case '-E': c.exitAfterSub = true; break;
    case '-f': { const r = setMode(c, 'file'); if (r) return r; c.file = v; break; }
    case '-F': { c.format = v; const e = checkFormat(v); if (e) return err(e); break; }
    case '-h': c.host = v; break;
    case '--insecure': c.insecure = true; break;
    case '-i': if (c.idPrefix !== undefined) return err('Error: -i and -I argument cannot be used together.\n\n'); c.id = v; c.malformedId = bad; break;
    case '-I': if (c.id !== undefined) return err('Error: -i and -I argument cannot be used together.\n\n'); c.idPrefix = v; c.malformedId = bad; break;
    case '-k': c.keepalive = atoi(v); if (c.keepalive < 5 || c.keepalive > 65535) return err('Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.\n\n'); break;
    case '--key': c.key = v; break;
    case '-L': return parseUrl(c, v, bad);
    case '-l': return setMode(c, 'stdin-line');
    case '-m': { const r = setMode(c, 'cmd'); if (r) return r; c.message = Buffer.from(v); break; }
    case '-M': { const n = atoi(v); if (n < 1) return err('Error: Maximum inflight messages must be greater than 0.\n\n'); c.maxInflight = n; break; }
    case '--nodelay': break; // TCP_NODELAY is always on
    case '-n': return setMode(c, 'null');
    case '-N': c.eol = false; break;
    case '-o': break; // read before the other flags
    case '-p': return parsePort(c, v);
    case '--pretty': c.pretty = true; break;
    case '-P': c.password = v; break;
    case '-q': { const q = atoi(v); if (q < 0 || q > 2) return err(`Error: Invalid QoS given: ${q}\n`); c.qos = q as QoS; break; }
    case '--quiet': c.quiet = true; break;
    case '-r': c.retain = true; break;
    case '-R': c.noRetain = true; break;
    case '--remove-retained': c.removeRetained = true; break;
    case '--repeat': c.repeatCount = atoi(v); if (c.repeatCount < 1) return err('Error: --repeat argument must be >0.\n\n'); break;
    case '--repeat-delay': { const f = Number.parseFloat(v) || 0; if (f < 0) return err('Error: --repeat-delay argument must be >=0.0.\n\n'); c.repeatDelay = Math.round(f * 1000); break; }
    case '--retain-as-published': c.retainAsPublished = true; break;
    case '--retained-only': c.retainedOnly = true; break;
    case '-s': return setMode(c, 'stdin-file');
    case '-t': return bad ? malformed('-t') : addTopic(c, c.kind, v);
    case '-T':
      if (bad) return malformed('-T');
      if (!isValidTopicFilter(v)) return invalidFilter('filter topic', v);
      c.filterOuts.push(v);
      break;
    case '--tls-alpn': c.alpn = v; break;
    case '--tls-use-os-certs': c.tlsUseOsCerts = true; break;
    case '--tls-version': c.tlsVersion = v; break;
    case '-U':
      if (bad) return malformed('-U');
      if (!isValidTopicFilter(v)) return invalidFilter('unsubscribe topic', v);
      c.unsubTopics.push(v);
      break;
    case '-u': c.username = v; c.malformedUsername = bad; break;
    case '-V': {
      const map: Record<string, ProtocolVersion> = { mqttv31: 3, 31: 3, mqttv311: 4, 311: 4, mqttv5: 5, 5: 5 };
      const version = map[v];
      if (version === undefined) return err('Error: Invalid protocol version argument given.\n\n');
      c.protocolVersion = version;
      break;
    }
    case '-v': c.verbose = true; break;
    case '-W': { const n = atoi(v); if (n < 1) return err(`Error: Invalid timeout "${n}".\n\n`); c.timeout = n; break; }
    case '--will-payload': c.willPayload = v; break;
    case '--will-qos': { const q = atoi(v); if (q < 0 || q > 2) return err(`Error: Invalid will QoS ${q}.\n\n`); c.willQos = q as QoS; break; }
    case '--will-retain': c.willRetain = true; break;
    case '--will-topic':
      if (bad) return malformed('--will-topic');
      if (!isValidTopicName(v)) return invalidName('will topic', v);
      c.willTopic = v;
      break;
    case '-x': {
      let n: number;
      if (v === '∞') n = 0xffffffff;
      else {
        if (!/^\s*[+-]?(0x[0-9a-f]+|\d+)$/i.test(v)) return err('Error: session-expiry-interval not a number.\n\n');
        n = Number(v.trim());
        if (n > 0xffffffff || n < -1) return err('Error: session-expiry-interval out of range.\n\n');
        if (n === -1) n = 0xffffffff;
      }
      c.sessionExpiry = n;
      break;
    }
  }
  return undefined;
}

function processArgs(c: CliConfig, argv: string[], raw: ReadonlyArray<Buffer | undefined> | undefined): ParseOutcome | undefined {
  for (let i = 0; i < argv.length; i++) {
    const flag = ALIASES[argv[i]!] ?? argv[i]!;
    if (flag === '--help') return { type: 'help' };
    if (flag === '--version') return { type: 'version' };
    if (UNSUPPORTED.has(flag)) return err(`Error: Option '${flag}' is not supported by midge.\n`);
    if (flag === '-D') {
      const [cmd, name, value, value2] = argv.slice(i + 1, i + 5);
      const r = applyProperty(c.propLists, cmd, name, value, value2);
      if (typeof r === 'string') return err(r);
      i += r;
      c.protocolVersion = 5;
      continue;
    }
    const valued = VALUE_FLAGS[flag];
    if (valued) {
      if (valued[1] && !valued[1].includes(c.kind)) return err(`Error: Unknown option '${argv[i]}'.\n`);
      if (i === argv.length - 1) return err(missingValue(flag, valued[0]));
      const v = argv[++i]!;
      const r = apply(c, flag, v, malformedUtf8(v, raw?.[i]));
      if (r) return r;
    } else if (Object.hasOwn(SWITCHES, flag)) {
      const only = SWITCHES[flag];
      if (only && !only.includes(c.kind)) return err(`Error: Unknown option '${argv[i]}'.\n`);
      const r = apply(c, flag, '');
      if (r) return r;
    } else {
      return err(`Error: Unknown option '${argv[i]}'.\n`);
    }
  }
  return undefined;
}

/**
 * Parses the command line like mosquitto's client_config_load(). `raw`: the bytes of each argument
 * (argv.ts's `rawArgs`), to tell an argument that was not valid UTF-8; without them an argument that
 * contains U+FFFD counts as malformed where it must be UTF-8.
 */
export function parseClientArgs(kind: ClientKind, argv: string[], raw?: ReadonlyArray<Buffer | undefined>): ParseOutcome {
  const c = new CliConfig(kind);
  const o = argv.indexOf('-o');
  if (o >= 0) {
    if (o === argv.length - 1) return err('Error: -o argument given but no options file specified.\n\n');
    const fileArgs = optionsFile(argv[o + 1]!);
    if ('type' in fileArgs) return fileArgs;
    const r = processArgs(c, fileArgs.args, fileArgs.raw);
    if (r) return r;
  }
  const r = processArgs(c, argv, raw);
  if (r) return r;
  if (c.willPayload !== undefined && c.willTopic === undefined) return err('Error: Will payload given, but no will topic given.\n');
  if (c.willRetain && c.willTopic === undefined) return err('Error: Will retain given, but no will topic given.\n');
  if ((c.cert !== undefined) !== (c.key !== undefined)) return err('Error: Both certfile and keyfile must be provided if one of them is set.\n');
  if (c.protocolVersion === 5) {
    if (!c.clean && c.sessionExpiry === -1) c.sessionExpiry = 0xffffffff;
    if (c.sessionExpiry === 0xffffffff && (c.idPrefix !== undefined || c.id === undefined)) {
      return err('Error: You must provide a client id if you are using an infinite session expiry interval.\n');
    }
    if (c.sessionExpiry > 0) c.propLists.connect.push({ name: 'session-expiry-interval', value: c.sessionExpiry });
  } else if (!c.clean && (c.idPrefix !== undefined || c.id === undefined)) {
    return err('Error: You must provide a client id if you are using the -c option.\n');
  }
  if (kind === 'sub' && c.topics.length === 0) return err('Error: You must specify a topic to subscribe to.\n');
  // mosquitto_property_check_all on every list (also when -V chose 3.x: the properties are then not sent)
  const props = finishProperties(c.propLists);
  if (typeof props === 'string') return err(props);
  c.props = props;
  return { type: 'ok', config: c };
}

/** The package version, for --help and --version. */
export function midgeVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The usage hint mosquitto prints after an option error. */
export function usageHint(tool: string): string {
  return `\nUse '${tool} --help' to see usage.\n`;
}
