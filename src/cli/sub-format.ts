/**
 * mosquitto_sub's message output (sub_client_output.c) for `midge sub` and `midge rr`: plain, -v, -N and
 * the -F format with its %-codes (including the MQTT 5.0 ones: %A %C %D %E %F %P %R %S), @-strftime codes,
 * \-escapes and the %j/%J JSON, byte for byte: JSON strings are escaped the way cJSON does it, on the
 * raw bytes, and 5.0 properties are listed in the order they came on the wire.
 */
import type { Message } from '../client/index.js';
import { jnum, jobj, jstr, parseJson, printJson, type JNode } from './cjson.js';
import { errPrint } from './client-connect.js';
import type { CliConfig } from './client-options.js';

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

/**
 * The "properties" member of %j/%J: one member per property in wire order (the codec keeps it), user
 * properties gathered in one object (repeated keys kept), one "subscription-identifier" per identifier.
 */
function jsonProperties(p: NonNullable<Message['properties']>): JNode {
  const members: Array<[string, JNode]> = [];
  for (const key of Object.keys(p) as Array<keyof typeof p>) {
    switch (key) {
      case 'payloadFormatIndicator': members.push(['payload-format-indicator', jnum(p.payloadFormatIndicator!)]); break;
      case 'messageExpiryInterval': members.push(['message-expiry-interval', jnum(p.messageExpiryInterval!)]); break;
      case 'contentType': members.push(['content-type', jstr(p.contentType!)]); break;
      case 'responseTopic': members.push(['response-topic', jstr(p.responseTopic!)]); break;
      case 'correlationData': members.push(['correlation-data', jstr(p.correlationData!)]); break;
      case 'subscriptionIdentifiers': for (const id of p.subscriptionIdentifiers!) members.push(['subscription-identifier', jnum(id)]); break;
      // mosquitto_sub 2.0.11 always prints 0 here (it does not read the alias value); kept for identical output
      case 'topicAlias': members.push(['topic-alias', jnum(0)]); break;
      case 'userProperties': members.push(['user-properties', jobj(p.userProperties!.map(([k, v]) => [k, jstr(v)]))]); break;
    }
  }
  return jobj(members);
}

function jsonOf(c: CliConfig, m: Message, d: Date, ns: bigint, escaped: boolean): Buffer | undefined {
  const us = String((ns / 1000n) % 1_000_000n).padStart(6, '0');
  let payload: JNode | undefined = jstr(m.payload);
  if (!escaped) {
    payload = m.payload.length ? parseJson(m.payload) : { t: 'null' };
    if (payload === undefined) {
      errPrint(c, `Error: Message payload is not valid JSON on topic ${m.topic}.\n`);
      return undefined;
    }
  }
  const members: Array<[string, JNode]> = [
    ['tst', jstr(`${isoDate(d)}T${isoTime(d)}.${us}Z${tz(d)}`)], ['topic', jstr(m.topic)], ['qos', jnum(m.qos)],
    ['retain', jnum(m.retain ? 1 : 0)], ['payloadlen', jnum(m.payload.length)],
  ];
  if (m.qos > 0) members.push(['mid', jnum(m.packetId ?? 0)]);
  if (m.properties) members.push(['properties', jsonProperties(m.properties)]);
  members.push(['payload', payload]);
  return printJson(jobj(members), c.pretty);
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
        case 'j': case 'J': { const j = jsonOf(c, m, now, wallNs, format[i] === 'j'); if (j !== undefined) out.push(j); break; }
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

