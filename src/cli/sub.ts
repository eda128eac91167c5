/**
 * `midge sub`: subscribe and print each message as it arrives, like mosquitto_sub.
 * Also holds the message printer (-v, -N, -F) that `midge rr` shares (mosquitto's sub_client_output.c).
 */
import { ConnectionRefusedError, MqttClient, type Message } from '../client/index.js';
import { resolveOptions } from '../client/options.js';
import { topicMatches } from '../topic/index.js';
import {
  attachDebug, connectTarget, describeConnectError, disconnectOptions, errPrint, midgeVersion, parseClientArgs, usageHint,
  type CliConfig,
} from './client-options.js';

const TOOL = 'midge sub';

export function usage(): string {
  return `midge sub is a simple mqtt client that will subscribe to a set of topics and print all messages it receives.
midge sub version ${midgeVersion()}.

Usage: midge sub {[-h host] [-p port] [-u username] [-P password] -t topic | -L URL [-t topic]}
                 [-c] [-k keepalive] [-q qos] [-x session-expiry-interval]
                 [-C msg_count] [-E] [-R] [--retained-only] [--remove-retained] [-T filter_out] [-U topic ...]
                 [-F format] [-W timeout_secs] [-A bind_address] [-i id] [-I id_prefix]
                 [-d] [-N] [--quiet] [-v] [-V protocol-version] [-o options-file]
                 [--will-topic [--will-payload payload] [--will-qos qos] [--will-retain]]
                 [{--cafile file | --capath dir} [--cert file] [--key file] [--ciphers ciphers]
                   [--insecure] [--tls-alpn protocol] [--tls-version version] [--tls-use-os-certs]]
                 [-D command identifier value]
       midge sub --help

 -A : bind the outgoing socket to this host/ip address.
 -c : disable clean session/enable persistent client mode.
 -C : disconnect and exit after receiving the 'msg_count' messages.
 -d : enable debug messages.
 -D : define MQTT v5 properties: -D command identifier value.
 -E : exit once all subscriptions have been acknowledged by the broker.
 -F : output format: %t topic, %p payload, %q qos, %r retain, %m message id, %l payload length,
      %I ISO 8601 time, %U unix time, %j/%J JSON, %x/%X payload in hex, %%, @-strftime codes, \\n \\t escapes.
 -h : mqtt host to connect to. Defaults to localhost.
 -i : id to use for this client. Defaults to an id assigned by the broker (MQTT 3.1: a random one).
 -I : define the client id as id_prefix appended with the process id.
 -k : keep alive in seconds for this client. Defaults to 60.
 -L : specify user, password, hostname, port and topic as a URL in the form:
      mqtt(s)://[username[:password]@]host[:port]/topic
 -N : do not add an end of line character when printing the payload.
 -p : network port to connect to. Defaults to 1883 for plain MQTT and 8883 for MQTT over TLS.
 -P : provide a password
 -q : quality of service level to use for the subscription. Defaults to 0.
 -R : do not print stale messages (those with retain set).
 -t : mqtt topic to subscribe to. May be repeated multiple times.
 -T : topic string to filter out of results. May be repeated.
 -u : provide a username
 -U : unsubscribe from a topic. May be repeated.
 -v : print published messages verbosely.
 -V : specify the version of the MQTT protocol to use when connecting.
      Can be mqttv5, mqttv311 or mqttv31 (or 5, 311, 31). Defaults to mqttv311.
 -W : Specifies a timeout in seconds how long to process incoming MQTT messages.
 -x : set the session-expiry-interval property on the CONNECT packet (MQTT v5).
 --help : display this message.
 --pretty : print formatted output rather than minimised output when using the JSON output format option.
 --quiet : don't print error messages.
 --retained-only : only handle messages with the retained flag set, and exit when the
                   first non-retained message is received.
 --remove-retained : send a message to the server to clear any received retained messages.
 --will-payload, --will-qos, --will-retain, --will-topic : the client Will.
 --cafile, --capath, --cert, --key, --insecure, --tls-version : TLS, as for midge pub.
`;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');
function tz(d: Date): string {
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${off >= 0 ? '+' : '-'}${pad2(Math.floor(a / 60))}${pad2(a % 60)}`;
}
const isoDate = (d: Date): string => `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
const isoTime = (d: Date): string => `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;

/** strftime for the @-codes of -F (the common ones). */
function strftime(code: string, d: Date, ns: bigint): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  switch (code) {
    case 'Y': return String(d.getFullYear());
    case 'y': return pad2(d.getFullYear() % 100);
    case 'm': return pad2(d.getMonth() + 1);
    case 'd': return pad2(d.getDate());
    case 'e': return String(d.getDate()).padStart(2, ' ');
    case 'H': return pad2(d.getHours());
    case 'I': return pad2(((d.getHours() + 11) % 12) + 1);
    case 'M': return pad2(d.getMinutes());
    case 'S': return pad2(d.getSeconds());
    case 'p': return d.getHours() < 12 ? 'AM' : 'PM';
    case 'a': return days[d.getDay()]!;
    case 'b': case 'h': return months[d.getMonth()]!;
    case 'j': return String(Math.floor((d.getTime() - new Date(d.getFullYear(), 0, 1).getTime()) / 86_400_000) + 1).padStart(3, '0');
    case 'z': return tz(d);
    case 's': return String(Math.floor(d.getTime() / 1000));
    case 'N': return String(ns % 1_000_000_000n).padStart(9, '0');
    case 'F': return isoDate(d);
    case 'T': return isoTime(d);
    case 'D': return `${pad2(d.getMonth() + 1)}/${pad2(d.getDate())}/${pad2(d.getFullYear() % 100)}`;
    case 'R': return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    case 'n': return '\n';
    case 't': return '\t';
    default: return '';
  }
}

function jsonOf(c: CliConfig, m: Message, d: Date, ns: bigint, escaped: boolean): string | undefined {
  const us = String((ns / 1000n) % 1_000_000n).padStart(6, '0');
  const root: Record<string, unknown> = {
    tst: `${isoDate(d)}T${isoTime(d)}.${us}Z${tz(d)}`, topic: m.topic, qos: m.qos, retain: m.retain ? 1 : 0,
    payloadlen: m.payload.length,
  };
  if (m.qos > 0) root.mid = m.packetId ?? 0;
  const p = m.properties;
  if (p) {
    const props: Record<string, unknown> = {};
    if (p.payloadFormatIndicator !== undefined) props['payload-format-indicator'] = p.payloadFormatIndicator;
    if (p.messageExpiryInterval !== undefined) props['message-expiry-interval'] = p.messageExpiryInterval;
    if (p.contentType !== undefined) props['content-type'] = p.contentType;
    if (p.responseTopic !== undefined) props['response-topic'] = p.responseTopic;
    if (p.correlationData !== undefined) props['correlation-data'] = p.correlationData.toString();
    if (p.subscriptionIdentifiers?.length) props['subscription-identifier'] = p.subscriptionIdentifiers[0];
    if (p.topicAlias !== undefined) props['topic-alias'] = p.topicAlias;
    if (p.userProperties?.length) props['user-properties'] = Object.fromEntries(p.userProperties);
    if (Object.keys(props).length > 0) root.properties = props;
  }
  if (escaped) {
    root.payload = m.payload.toString('utf8');
  } else {
    try {
      root.payload = m.payload.length ? JSON.parse(m.payload.toString('utf8')) : null;
    } catch {
      errPrint(c, `Error: Message payload is not valid JSON on topic ${m.topic}.\n`);
      return undefined;
    }
  }
  return c.pretty ? JSON.stringify(root, null, '\t') : JSON.stringify(root);
}

function field(value: string, align: string, width: number, precision: number, pad = ' '): string {
  let v = precision >= 0 ? value.slice(0, precision) : value;
  if (v.length < width) v = align === '-' ? v.padEnd(width, ' ') : v.padStart(width, pad);
  return v;
}

/** mosquitto_sub's -F output for one message (without the end of line). */
export function formatMessage(c: CliConfig, format: string, m: Message, now = new Date(), ns = process.hrtime.bigint()): Buffer {
  const out: Buffer[] = [];
  const text = (s: string): void => { out.push(Buffer.from(s, 'utf8')); };
  const wallNs = BigInt(now.getTime()) * 1_000_000n + (ns % 1_000_000n);
  const props = m.properties ?? {};
  for (let i = 0; i < format.length; i++) {
    const ch = format[i]!;
    if (ch === '%' && i < format.length - 1) {
      i++;
      let align = '';
      let pad = ' ';
      let width = 0;
      let precision = -1;
      if (format[i] === '-') { align = '-'; if (i < format.length - 1) i++; }
      if (format[i] === '0') { pad = '0'; if (i < format.length - 1) i++; }
      while (i < format.length - 1 && format[i]! >= '0' && format[i]! <= '9') width = width * 10 + Number(format[i++]);
      if (format[i] === '.' && i < format.length - 1) {
        i++;
        precision = 0;
        while (i < format.length - 1 && format[i]! >= '0' && format[i]! <= '9') precision = precision * 10 + Number(format[i++]);
      }
      const int = (n: number | undefined): void => text(n === undefined ? ''.padStart(width, pad) : field(String(n), align, width, -1, pad));
      switch (format[i]) {
        case '%': text('%'); break;
        case 'A': int(props.topicAlias); break;
        case 'C': text(field(props.contentType ?? '', align, width, precision)); break;
        case 'D': if (props.correlationData) out.push(props.correlationData); break;
        case 'E': int(props.messageExpiryInterval); break;
        case 'F': int(props.payloadFormatIndicator); break;
        case 'I': text(field(`${isoDate(now)}T${isoTime(now)}${tz(now)}`, align, width, precision)); break;
        case 'j': case 'J': { const j = jsonOf(c, m, now, wallNs, format[i] === 'j'); if (j !== undefined) text(j); break; }
        case 'l': int(m.payload.length); break;
        case 'm': int(m.packetId ?? 0); break;
        case 'P': text((props.userProperties ?? []).map(([k, v]) => `${k}:${v}`).join(' ')); break;
        case 'p': {
          const len = width > 0 ? Math.min(width, m.payload.length) : m.payload.length;
          const padding = Math.max(0, width - len);
          if (align !== '-') text(pad.repeat(padding));
          out.push(m.payload.subarray(0, len));
          if (align === '-') text(' '.repeat(padding));
          break;
        }
        case 'q': text(String(m.qos)); break;
        case 'R': if (props.responseTopic !== undefined) text(field(props.responseTopic, align, width, precision)); break;
        case 'r': text(m.retain ? '1' : '0'); break;
        case 'S': int(props.subscriptionIdentifiers?.[0]); break;
        case 't': text(field(m.topic, align, width, precision)); break;
        case 'U': text(`${Math.floor(now.getTime() / 1000)}.${String(wallNs % 1_000_000_000n).padStart(9, '0')}`); break;
        case 'x': text(m.payload.toString('hex')); break;
        case 'X': text(m.payload.toString('hex').toUpperCase()); break;
      }
    } else if (ch === '@' && i < format.length - 1) {
      i++;
      text(format[i] === '@' ? '@' : strftime(format[i]!, now, wallNs));
    } else if (ch === '\\' && i < format.length - 1) {
      i++;
      const esc: Record<string, string> = { '\\': '\\', 0: '\0', a: '\x07', e: '\x1b', n: '\n', r: '\r', t: '\t', v: '\v' };
      text(esc[format[i]!] ?? '');
    } else {
      text(ch);
    }
  }
  return Buffer.concat(out);
}

/** Prints one message the way mosquitto_sub does (-F, -v, plain), flushed at once. */
export function printMessage(c: CliConfig, m: Message): void {
  let out: Buffer | undefined;
  const eol = c.eol ? '\n' : '';
  if (c.format !== undefined) {
    out = Buffer.concat([formatMessage(c, c.format, m), Buffer.from(eol)]);
  } else if (c.verbose) {
    out = m.payload.length
      ? Buffer.concat([Buffer.from(`${m.topic} `), m.payload, Buffer.from(eol)])
      : c.eol ? Buffer.from(`${m.topic} (null)\n`) : undefined;
  } else if (m.payload.length) {
    out = Buffer.concat([m.payload, Buffer.from(eol)]);
  }
  if (out && out.length) process.stdout.write(out);
}

export async function run(argv: string[]): Promise<number> {
  const parsed = parseClientArgs('sub', argv);
  if (parsed.type === 'help') { process.stdout.write(usage()); return 1; }
  if (parsed.type === 'version') { process.stdout.write(`midge sub version ${midgeVersion()}.\n`); return 1; }
  if (parsed.type === 'error') { process.stderr.write(parsed.text + usageHint(TOOL)); return 1; }
  const c = parsed.config;
  if (c.noRetain && c.retainedOnly) {
    process.stderr.write("\nError: Combining '-R' and '--retained-only' makes no sense.\n");
    return 1;
  }
  let client: MqttClient;
  try {
    const { url, options } = connectTarget(c, true);
    options.resubscribe = false; // subscribed on every CONNACK below, as mosquitto_sub does
    client = new MqttClient(resolveOptions(url, options));
  } catch (e) {
    const d = describeConnectError(c, e);
    errPrint(c, d.text);
    return d.exitCode;
  }
  attachDebug(client, c);

  let exitCode = 0;
  let processing = true;
  let count = 0;
  const stop = (code: number, reasonCode?: number): void => {
    if (!processing && code === 0) return;
    processing = false;
    exitCode ||= code;
    void client.end({ ...disconnectOptions(c), ...(reasonCode !== undefined && c.protocolVersion === 5 ? { reasonCode } : {}) });
  };

  client.on('packetreceive', (p) => {
    if (p.type === 'suback' && c.debug && !c.quiet) process.stdout.write(`Subscribed (mid: ${p.packetId}): ${p.reasonCodes.join(', ')}\n`);
  });
  client.on('connect', () => {
    const subscribeProps = Object.keys(c.props.subscribe).length > 0 ? c.props.subscribe : undefined;
    const subs = c.topics.map((topic) => ({
      topic, qos: c.qos, ...(c.retainAsPublished ? { retainAsPublished: true } : {}), ...(c.noRetain ? { retainHandling: 2 as const } : {}),
    }));
    const subscribed = client.subscribe(subs, subscribeProps ? { properties: subscribeProps } : {}).catch(() => undefined);
    const unsubProps = Object.keys(c.props.unsubscribe).length > 0 ? c.props.unsubscribe : undefined;
    const unsubscribed = c.unsubTopics.map((t) => client.unsubscribe(t, unsubProps).catch(() => undefined));
    if (c.exitAfterSub) void Promise.all([subscribed, ...unsubscribed]).then(() => stop(0));
  });
  client.on('error', (e) => {
    // a reconnect that the broker refuses ends mosquitto_sub, like the first connection
    if (e instanceof ConnectionRefusedError) {
      errPrint(c, describeConnectError(c, e).text);
      stop(e.returnCode);
    }
  });
  client.on('message', (m) => {
    if (!processing) return;
    if (c.retainedOnly && !m.retain) { stop(0); return; }
    if (m.retain && c.noRetain) return;
    if (c.filterOuts.some((f) => topicMatches(f, m.topic))) return;
    if (c.removeRetained && m.retain) void client.publish(m.topic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => undefined);
    printMessage(c, m);
    if (c.msgCount > 0 && ++count === c.msgCount) stop(0);
  });

  const onSignal = (): void => stop(0, 0x04);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // the reader of our output went away (`midge sub ... | head -1`): stop quietly
  const onOutputError = (e: NodeJS.ErrnoException): void => {
    if (e.code !== 'EPIPE') throw e;
    processing = false;
    void client.end({ force: true });
  };
  process.stdout.on('error', onOutputError);
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => client.once('end', resolve));
  try {
    await client.start();
    if (c.timeout > 0) {
      timer = setTimeout(() => { errPrint(c, 'Timed out\n'); stop(27); }, c.timeout * 1000);
    }
    await ended;
  } catch (e) {
    const d = describeConnectError(c, e);
    if (c.debug) for (const line of d.debugLines) process.stdout.write(`${line}\n`);
    errPrint(c, d.text);
    exitCode = d.exitCode;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onOutputError);
  }
  return exitCode;
}
