/**
 * `-D command name value` of the command-line clients, as mosquitto 2.0.11's tools read it
 * (client_shared.c cfg_parse_property, libmosquitto's property tables): the same command and property
 * names (case-insensitive), the same checks in the same order, the same error texts. Properties are kept
 * in the order given, then checked per command like mosquitto_property_check_all() (value rules,
 * duplicates) and turned into codec Properties.
 */
import type { Properties } from '../codec/types.js';

/** The commands -D stores properties for (the others are accepted by name and then refused). */
export const PROPERTY_COMMANDS = ['connect', 'publish', 'subscribe', 'unsubscribe', 'disconnect', 'will'] as const;
export type PropertyCommand = (typeof PROPERTY_COMMANDS)[number];

/** mosquitto_string_to_command: pingreq, pingresp, suback and unsuback are not known to 2.0.11 */
const COMMANDS = ['auth', 'connack', 'connect', 'disconnect', 'puback', 'pubcomp', 'publish', 'pubrec', 'pubrel', 'subscribe', 'unsubscribe', 'will'] as const;
type Command = (typeof COMMANDS)[number];

/** libmosquitto's MQTT_PROP_TYPE_* numbers, printed in "Error adding property NAME TYPE" */
const TYPE = { byte: 1, u16: 2, u32: 3, varint: 4, binary: 5, string: 6, pair: 7 } as const;
type Kind = keyof typeof TYPE;
interface Def { key: keyof Properties; kind: Kind; id: number }

const DEFS: Record<string, Def> = {
  'payload-format-indicator': { key: 'payloadFormatIndicator', kind: 'byte', id: 0x01 },
  'message-expiry-interval': { key: 'messageExpiryInterval', kind: 'u32', id: 0x02 },
  'content-type': { key: 'contentType', kind: 'string', id: 0x03 },
  'response-topic': { key: 'responseTopic', kind: 'string', id: 0x08 },
  'correlation-data': { key: 'correlationData', kind: 'binary', id: 0x09 },
  'subscription-identifier': { key: 'subscriptionIdentifiers', kind: 'varint', id: 0x0b },
  'session-expiry-interval': { key: 'sessionExpiryInterval', kind: 'u32', id: 0x11 },
  'assigned-client-identifier': { key: 'assignedClientIdentifier', kind: 'string', id: 0x12 },
  'server-keep-alive': { key: 'serverKeepAlive', kind: 'u16', id: 0x13 },
  'authentication-method': { key: 'authenticationMethod', kind: 'string', id: 0x15 },
  'authentication-data': { key: 'authenticationData', kind: 'binary', id: 0x16 },
  'request-problem-information': { key: 'requestProblemInformation', kind: 'byte', id: 0x17 },
  'will-delay-interval': { key: 'willDelayInterval', kind: 'u32', id: 0x18 },
  'request-response-information': { key: 'requestResponseInformation', kind: 'byte', id: 0x19 },
  'response-information': { key: 'responseInformation', kind: 'string', id: 0x1a },
  'server-reference': { key: 'serverReference', kind: 'string', id: 0x1c },
  'reason-string': { key: 'reasonString', kind: 'string', id: 0x1f },
  'receive-maximum': { key: 'receiveMaximum', kind: 'u16', id: 0x21 },
  'topic-alias-maximum': { key: 'topicAliasMaximum', kind: 'u16', id: 0x22 },
  'topic-alias': { key: 'topicAlias', kind: 'u16', id: 0x23 },
  'maximum-qos': { key: 'maximumQoS', kind: 'byte', id: 0x24 },
  'retain-available': { key: 'retainAvailable', kind: 'byte', id: 0x25 },
  'user-property': { key: 'userProperties', kind: 'pair', id: 0x26 },
  'maximum-packet-size': { key: 'maximumPacketSize', kind: 'u32', id: 0x27 },
  'wildcard-subscription-available': { key: 'wildcardSubscriptionAvailable', kind: 'byte', id: 0x28 },
  'subscription-identifier-available': { key: 'subscriptionIdentifiersAvailable', kind: 'byte', id: 0x29 },
  'shared-subscription-available': { key: 'sharedSubscriptionAvailable', kind: 'byte', id: 0x2a },
};

/** mosquitto_property_check_command: which property each command may carry (2.0.11, will included). */
const ack = ['reason-string', 'user-property'];
const ALLOWED: Record<Command, string[]> = {
  auth: ['authentication-method', 'authentication-data', ...ack],
  connack: ['session-expiry-interval', 'assigned-client-identifier', 'server-keep-alive', 'authentication-method',
    'authentication-data', 'response-information', 'server-reference', 'receive-maximum', 'topic-alias-maximum', 'maximum-qos',
    'retain-available', 'maximum-packet-size', 'wildcard-subscription-available', 'subscription-identifier-available',
    'shared-subscription-available', ...ack],
  connect: ['session-expiry-interval', 'authentication-method', 'authentication-data', 'request-problem-information',
    'request-response-information', 'receive-maximum', 'topic-alias-maximum', 'user-property', 'maximum-packet-size'],
  disconnect: ['session-expiry-interval', 'server-reference', ...ack],
  puback: ack, pubcomp: ack, pubrec: ack, pubrel: ack,
  publish: ['payload-format-indicator', 'message-expiry-interval', 'content-type', 'response-topic', 'correlation-data',
    'subscription-identifier', 'topic-alias', 'user-property'],
  subscribe: ['subscription-identifier', 'user-property'],
  unsubscribe: ['user-property'],
  will: ['payload-format-indicator', 'message-expiry-interval', 'content-type', 'response-topic', 'correlation-data',
    'will-delay-interval', 'reason-string', 'user-property'],
};

const MAX: Partial<Record<Kind, bigint>> = { byte: 0xffn, u16: 0xffffn, u32: 0xffffffffn };
const LONG_MAX = 2n ** 63n - 1n;

/** One -D property as given. */
export interface PropertyEntry { name: string; value: number | string | Buffer | [string, string] }
export type PropertyLists = Record<PropertyCommand, PropertyEntry[]>;

export function emptyPropertyLists(): PropertyLists {
  return { connect: [], publish: [], subscribe: [], unsubscribe: [], disconnect: [], will: [] };
}

/** C's atol (strtol base 10): leading blanks, a sign, digits; saturates at the 64-bit limits. */
function atol(s: string): bigint {
  const m = /^[\t\n\v\f\r ]*([+-]?)(\d+)/.exec(s);
  if (!m) return 0n;
  const n = BigInt(m[2]!) * (m[1] === '-' ? -1n : 1n);
  return n > LONG_MAX ? LONG_MAX : n < -LONG_MAX - 1n ? -LONG_MAX - 1n : n;
}

/** mosquitto_validate_utf8: well-formed UTF-8 without U+0000..U+001F, U+007F..U+009F or non-characters. */
export function mosquittoValidUtf8(s: string): boolean {
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f)) return false;
    if (c >= 0xd800 && c <= 0xdfff) return false;
    if ((c >= 0xfdd0 && c <= 0xfdef) || (c & 0xfffe) === 0xfffe) return false;
  }
  return true;
}

/**
 * Adds `-D cmd name value [value2]` to `lists[cmd]`. Returns how many arguments after `-D` it used,
 * or the error text to print (mosquitto's, with its newlines; the caller adds the usage hint).
 */
export function applyProperty(lists: PropertyLists, cmd?: string, name?: string, value?: string, value2?: string): number | string {
  const missing = 'Error: --property argument given but not enough arguments specified.\n\n';
  if (cmd === undefined || name === undefined || value === undefined) return missing;
  const command = COMMANDS.find((c) => c === cmd.toLowerCase());
  if (command === undefined) return 'Error: Invalid command given in --property argument.\n\n';
  const propName = name.toLowerCase();
  const def = DEFS[propName];
  if (def === undefined) return 'Error: Invalid property name given in --property argument.\n\n';
  if (!ALLOWED[command].includes(propName)) return `Error: ${name} property not allowed for ${cmd} in --property argument.\n\n`;
  if (def.kind === 'pair' && value2 === undefined) return missing;
  const notSupported = `Error: ${name} property not supported for ${cmd} in --property argument.\n\n`;
  if (command === 'publish' && def.id === 0x0b) return notSupported;
  if (command === 'auth' || command === 'puback' || command === 'pubcomp' || command === 'pubrec' || command === 'pubrel') return notSupported;
  if (command === 'connack') return '';
  const list = lists[command];
  const adding = `Error adding property ${name} ${TYPE[def.kind]}\n`;
  switch (def.kind) {
    case 'string':
      if (!mosquittoValidUtf8(value)) return adding;
      list.push({ name: propName, value });
      return 3;
    case 'binary':
      if (Buffer.byteLength(value) > 0xffff) return `Error: Property value too long for property ${name}.\n\n`;
      list.push({ name: propName, value: Buffer.from(value) });
      return 3;
    case 'pair':
      if (!mosquittoValidUtf8(value) || !mosquittoValidUtf8(value2!)) return adding;
      list.push({ name: propName, value: [value, value2!] });
      return 4;
    default: {
      const n = atol(value);
      const max = MAX[def.kind];
      if (n < 0n || (max !== undefined && n > max)) return `Error: Property value (${n}) out of range for property ${name}.\n\n`;
      if (def.kind === 'varint' && n > 268_435_455n) return adding;
      list.push({ name: propName, value: Number(n) });
      return 3;
    }
  }
}

const LIST_NAMES: Record<PropertyCommand, string> = {
  connect: 'CONNECT', publish: 'PUBLISH', subscribe: 'SUBSCRIBE', unsubscribe: 'UNSUBSCRIBE', disconnect: 'DISCONNECT', will: 'Will',
};
const PROTOCOL = 'A network protocol error occurred when communicating with the broker.';
const ZERO_IS_ERROR = new Set(['maximum-packet-size', 'receive-maximum', 'topic-alias']);
const FLAGS = new Set(['request-problem-information', 'request-response-information', 'maximum-qos', 'retain-available',
  'wildcard-subscription-available', 'subscription-identifier-available', 'shared-subscription-available']);

/** mosquitto_property_check_all for one list: value rules, then duplicates, property by property. */
function checkList(list: PropertyEntry[]): string | undefined {
  for (let i = 0; i < list.length; i++) {
    const { name, value } = list[i]!;
    if (FLAGS.has(name) && (value as number) > 1) return PROTOCOL;
    if (ZERO_IS_ERROR.has(name) && value === 0) return PROTOCOL;
    if (name !== 'user-property' && list.slice(i + 1).some((e) => e.name === name)) return 'Duplicate property in property list';
  }
  return undefined;
}

/**
 * Checks every command's list in mosquitto's order (CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, DISCONNECT,
 * Will) and returns the first error text ("Error in X properties: ...\n"), or the codec Properties.
 */
export function finishProperties(lists: PropertyLists): Record<PropertyCommand, Properties> | string {
  const out = {} as Record<PropertyCommand, Properties>;
  for (const cmd of PROPERTY_COMMANDS) {
    const error = checkList(lists[cmd]);
    if (error) return `Error in ${LIST_NAMES[cmd]} properties: ${error}\n`;
    const props: Record<string, unknown> = {};
    for (const { name, value } of lists[cmd]) {
      const def = DEFS[name]!;
      if (def.kind === 'pair' || def.kind === 'varint') ((props[def.key] ??= []) as unknown[]).push(value);
      else props[def.key] = value;
    }
    out[cmd] = props as Properties;
  }
  return out;
}
