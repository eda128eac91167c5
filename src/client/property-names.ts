/**
 * MQTT 5.0 properties by their mosquitto names ("message-expiry-interval"...), for `-D command name value`
 * in the command-line clients (libmosquitto's mosquitto_string_to_property_info). Errors are mosquitto's texts.
 */
import type { Properties } from '../codec/types.js';

export const PROPERTY_COMMANDS = ['connect', 'publish', 'subscribe', 'unsubscribe', 'disconnect', 'will'] as const;
export type PropertyCommand = (typeof PROPERTY_COMMANDS)[number];

type Kind = 'byte' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';
interface Def { key: keyof Properties; kind: Kind; commands: PropertyCommand[] }

const DEFS: Record<string, Def> = {
  'payload-format-indicator': { key: 'payloadFormatIndicator', kind: 'byte', commands: ['publish', 'will'] },
  'message-expiry-interval': { key: 'messageExpiryInterval', kind: 'u32', commands: ['publish', 'will'] },
  'content-type': { key: 'contentType', kind: 'string', commands: ['publish', 'will'] },
  'response-topic': { key: 'responseTopic', kind: 'string', commands: ['publish', 'will'] },
  'correlation-data': { key: 'correlationData', kind: 'binary', commands: ['publish', 'will'] },
  'subscription-identifier': { key: 'subscriptionIdentifiers', kind: 'varint', commands: ['subscribe'] },
  'session-expiry-interval': { key: 'sessionExpiryInterval', kind: 'u32', commands: ['connect', 'disconnect'] },
  'authentication-method': { key: 'authenticationMethod', kind: 'string', commands: ['connect'] },
  'authentication-data': { key: 'authenticationData', kind: 'binary', commands: ['connect'] },
  'request-problem-information': { key: 'requestProblemInformation', kind: 'byte', commands: ['connect'] },
  'will-delay-interval': { key: 'willDelayInterval', kind: 'u32', commands: ['will'] },
  'request-response-information': { key: 'requestResponseInformation', kind: 'byte', commands: ['connect'] },
  'reason-string': { key: 'reasonString', kind: 'string', commands: ['disconnect'] },
  'receive-maximum': { key: 'receiveMaximum', kind: 'u16', commands: ['connect'] },
  'topic-alias-maximum': { key: 'topicAliasMaximum', kind: 'u16', commands: ['connect'] },
  'user-property': { key: 'userProperties', kind: 'pair', commands: [...PROPERTY_COMMANDS] },
  'maximum-packet-size': { key: 'maximumPacketSize', kind: 'u32', commands: ['connect'] },
};

const MAX: Partial<Record<Kind, number>> = { byte: 0xff, u16: 0xffff, u32: 0xffffffff, varint: 268_435_455 };

/**
 * Adds `-D cmd name value [value2]` to `props[cmd]`. Returns how many arguments after `-D` it used,
 * or the error text to print.
 */
export function applyProperty(
  props: Record<PropertyCommand, Properties>, cmd?: string, name?: string, value?: string, value2?: string,
): number | string {
  const missing = 'Error: --property argument given but not enough arguments specified.\n\n';
  if (cmd === undefined || name === undefined || value === undefined) return missing;
  if (!(PROPERTY_COMMANDS as readonly string[]).includes(cmd)) return 'Error: Invalid command given in --property argument.\n\n';
  const def = DEFS[name];
  if (!def) return 'Error: Invalid property name given in --property argument.\n\n';
  const command = cmd as PropertyCommand;
  if (!def.commands.includes(command)) return `Error: ${name} property not allowed for ${cmd} in --property argument.\n\n`;
  const target = props[command] as Record<string, unknown>;
  switch (def.kind) {
    case 'string': target[def.key] = value; return 3;
    case 'binary': target[def.key] = Buffer.from(value); return 3;
    case 'pair': {
      if (value2 === undefined) return missing;
      const list = (target[def.key] as Array<[string, string]> | undefined) ?? [];
      list.push([value, value2]);
      target[def.key] = list;
      return 4;
    }
    default: {
      const n = Number.parseInt(value, 10) || 0;
      if (n < 0 || n > MAX[def.kind]!) return `Error: Property value (${n}) out of range for property ${name}.\n\n`;
      target[def.key] = def.kind === 'varint' ? [n] : n;
      return 3;
    }
  }
}
