/**
 * MQTT constants: packet type numbers, the 5.0 property table (which drives properties.ts),
 * 5.0 reason codes and the CONNACK texts that mosquitto's command-line clients print.
 */
import type { PacketType, Properties, ProtocolVersion } from './types.js';

/** Fixed-header packet type numbers (upper nibble of the first byte). 0 is reserved. */
export const PacketTypeId = {
  connect: 1, connack: 2, publish: 3, puback: 4, pubrec: 5, pubrel: 6, pubcomp: 7,
  subscribe: 8, suback: 9, unsubscribe: 10, unsuback: 11, pingreq: 12, pingresp: 13,
  disconnect: 14, auth: 15,
} as const satisfies Record<PacketType, number>;

/** Packet type name by number; index 0 is the reserved type. */
export const PacketTypeName: readonly (PacketType | undefined)[] = [
  undefined, 'connect', 'connack', 'publish', 'puback', 'pubrec', 'pubrel', 'pubcomp',
  'subscribe', 'suback', 'unsubscribe', 'unsuback', 'pingreq', 'pingresp', 'disconnect', 'auth',
];

/** Maximum value of a Variable Byte Integer (4 bytes). */
export const MAX_VARINT = 268_435_455;
/** Largest possible whole packet: type byte + 4 length bytes + MAX_VARINT body bytes. */
export const MAX_PACKET_SIZE = 1 + 4 + MAX_VARINT;

/** The data types of 5.0 properties (spec 2.2.2.2). */
export type PropertyType = 'byte' | 'u16' | 'u32' | 'varint' | 'utf8' | 'binary' | 'pair';

/**
 * Where a property may appear: a bit per packet type number (1 << type), plus WILL for the will
 * properties of CONNECT.
 */
export const WILL = 1 << 16;
const CONNECT = 1 << 1, CONNACK = 1 << 2, PUBLISH = 1 << 3, PUBACK = 1 << 4, PUBREC = 1 << 5,
  PUBREL = 1 << 6, PUBCOMP = 1 << 7, SUBSCRIBE = 1 << 8, SUBACK = 1 << 9, UNSUBSCRIBE = 1 << 10,
  UNSUBACK = 1 << 11, DISCONNECT = 1 << 14, AUTH = 1 << 15;
const ACKS = PUBACK | PUBREC | PUBREL | PUBCOMP;

export interface PropertyDef {
  readonly id: number;
  readonly name: keyof Properties;
  readonly type: PropertyType;
  /** bit mask of the packets (1 << type, or WILL) the property is allowed in */
  readonly allowedIn: number;
  /** packets in which it may appear more than once (its value is then an array) */
  readonly repeatIn: number;
  /** a byte that must be 0 or 1 (else ProtocolError) */
  readonly flag?: true;
  /** a value of 0 is a ProtocolError */
  readonly nonZero?: true;
}

/** Every MQTT 5.0 property, in identifier order. */
export const PROPERTIES: readonly PropertyDef[] = [
  { id: 0x01, name: 'payloadFormatIndicator', type: 'byte', allowedIn: PUBLISH | WILL, repeatIn: 0, flag: true },
  { id: 0x02, name: 'messageExpiryInterval', type: 'u32', allowedIn: PUBLISH | WILL, repeatIn: 0 },
  { id: 0x03, name: 'contentType', type: 'utf8', allowedIn: PUBLISH | WILL, repeatIn: 0 },
  { id: 0x08, name: 'responseTopic', type: 'utf8', allowedIn: PUBLISH | WILL, repeatIn: 0 },
  { id: 0x09, name: 'correlationData', type: 'binary', allowedIn: PUBLISH | WILL, repeatIn: 0 },
  // one in SUBSCRIBE (3.8.2.1.2), several in PUBLISH (3.3.2.3.8); 0 is a Protocol Error
  { id: 0x0b, name: 'subscriptionIdentifiers', type: 'varint', allowedIn: PUBLISH | SUBSCRIBE, repeatIn: PUBLISH, nonZero: true },
  { id: 0x11, name: 'sessionExpiryInterval', type: 'u32', allowedIn: CONNECT | CONNACK | DISCONNECT, repeatIn: 0 },
  { id: 0x12, name: 'assignedClientIdentifier', type: 'utf8', allowedIn: CONNACK, repeatIn: 0 },
  { id: 0x13, name: 'serverKeepAlive', type: 'u16', allowedIn: CONNACK, repeatIn: 0 },
  { id: 0x15, name: 'authenticationMethod', type: 'utf8', allowedIn: CONNECT | CONNACK | AUTH, repeatIn: 0 },
  { id: 0x16, name: 'authenticationData', type: 'binary', allowedIn: CONNECT | CONNACK | AUTH, repeatIn: 0 },
  { id: 0x17, name: 'requestProblemInformation', type: 'byte', allowedIn: CONNECT, repeatIn: 0, flag: true },
  { id: 0x18, name: 'willDelayInterval', type: 'u32', allowedIn: WILL, repeatIn: 0 },
  { id: 0x19, name: 'requestResponseInformation', type: 'byte', allowedIn: CONNECT, repeatIn: 0, flag: true },
  { id: 0x1a, name: 'responseInformation', type: 'utf8', allowedIn: CONNACK, repeatIn: 0 },
  { id: 0x1c, name: 'serverReference', type: 'utf8', allowedIn: CONNACK | DISCONNECT, repeatIn: 0 },
  { id: 0x1f, name: 'reasonString', type: 'utf8', allowedIn: CONNACK | ACKS | SUBACK | UNSUBACK | DISCONNECT | AUTH, repeatIn: 0 },
  { id: 0x21, name: 'receiveMaximum', type: 'u16', allowedIn: CONNECT | CONNACK, repeatIn: 0, nonZero: true },
  { id: 0x22, name: 'topicAliasMaximum', type: 'u16', allowedIn: CONNECT | CONNACK, repeatIn: 0 },
  { id: 0x23, name: 'topicAlias', type: 'u16', allowedIn: PUBLISH, repeatIn: 0 },
  { id: 0x24, name: 'maximumQoS', type: 'byte', allowedIn: CONNACK, repeatIn: 0, flag: true },
  { id: 0x25, name: 'retainAvailable', type: 'byte', allowedIn: CONNACK, repeatIn: 0, flag: true },
  {
    id: 0x26, name: 'userProperties', type: 'pair', repeatIn: ~0,
    allowedIn: CONNECT | CONNACK | PUBLISH | WILL | ACKS | SUBSCRIBE | SUBACK | UNSUBSCRIBE | UNSUBACK | DISCONNECT | AUTH,
  },
  { id: 0x27, name: 'maximumPacketSize', type: 'u32', allowedIn: CONNECT | CONNACK, repeatIn: 0, nonZero: true },
  { id: 0x28, name: 'wildcardSubscriptionAvailable', type: 'byte', allowedIn: CONNACK, repeatIn: 0, flag: true },
  { id: 0x29, name: 'subscriptionIdentifiersAvailable', type: 'byte', allowedIn: CONNACK, repeatIn: 0, flag: true },
  { id: 0x2a, name: 'sharedSubscriptionAvailable', type: 'byte', allowedIn: CONNACK, repeatIn: 0, flag: true },
];

/** PROPERTIES indexed by identifier (undefined = not a property). */
export const PROPERTY_BY_ID: readonly (PropertyDef | undefined)[] = (() => {
  const t: (PropertyDef | undefined)[] = new Array(256).fill(undefined);
  for (const d of PROPERTIES) t[d.id] = d;
  return t;
})();

/** MQTT 5.0 reason codes (spec 2.4). Several codes share a value; each name is listed once. */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;
export type ReasonCodeName = keyof typeof ReasonCode;

/** MQTT 3.x CONNACK return codes. */
export const ConnackReturnCode = {
  Accepted: 0,
  UnacceptableProtocolVersion: 1,
  IdentifierRejected: 2,
  ServerUnavailable: 3,
  BadUserNameOrPassword: 4,
  NotAuthorized: 5,
} as const;

/** Texts of mosquitto's `mosquitto_reason_string` (lib/strings_mosq.c), by 5.0 reason code. */
const REASON_TEXT: Readonly<Record<number, string>> = {
  0x00: 'Success', 0x01: 'Granted QoS 1', 0x02: 'Granted QoS 2', 0x04: 'Disconnect with Will Message',
  0x10: 'No matching subscribers', 0x11: 'No subscription existed', 0x18: 'Continue authentication',
  0x19: 'Re-authenticate', 0x80: 'Unspecified error', 0x81: 'Malformed Packet', 0x82: 'Protocol Error',
  0x83: 'Implementation specific error', 0x84: 'Unsupported Protocol Version',
  0x85: 'Client Identifier not valid', 0x86: 'Bad User Name or Password', 0x87: 'Not authorized',
  0x88: 'Server unavailable', 0x89: 'Server busy', 0x8a: 'Banned', 0x8b: 'Server shutting down',
  0x8c: 'Bad authentication method', 0x8d: 'Keep Alive timeout', 0x8e: 'Session taken over',
  0x8f: 'Topic Filter invalid', 0x90: 'Topic Name invalid', 0x91: 'Packet Identifier in use',
  0x92: 'Packet Identifier not found', 0x93: 'Receive Maximum exceeded', 0x94: 'Topic Alias invalid',
  0x95: 'Packet too large', 0x96: 'Message rate too high', 0x97: 'Quota exceeded',
  0x98: 'Administrative action', 0x99: 'Payload format invalid', 0x9a: 'Retain not supported',
  0x9b: 'QoS not supported', 0x9c: 'Use another server', 0x9d: 'Server moved',
  0x9e: 'Shared Subscriptions not supported', 0x9f: 'Connection rate exceeded',
  0xa0: 'Maximum connect time', 0xa1: 'Subscription identifiers not supported',
  0xa2: 'Wildcard Subscriptions not supported',
};

/** Texts of mosquitto's `mosquitto_connack_string`, by 3.x return code. */
const CONNACK_TEXT: readonly string[] = [
  'Connection Accepted.',
  'Connection Refused: unacceptable protocol version.',
  'Connection Refused: identifier rejected.',
  'Connection Refused: broker unavailable.',
  'Connection Refused: bad user name or password.',
  'Connection Refused: not authorised.',
];

/** The text mosquitto gives a 5.0 reason code (`mosquitto_reason_string`); "Unknown reason" otherwise. */
export function reasonCodeText(code: number): string {
  return REASON_TEXT[code] ?? 'Unknown reason';
}

/**
 * The text mosquitto_sub prints after "Connection error: " for a refused CONNACK:
 * for 3.x `mosquitto_connack_string` (these texts end with a full stop, as mosquitto's do),
 * for 5.0 `mosquitto_reason_string`.
 */
export function connackReturnCodeText(code: number, version: ProtocolVersion): string {
  if (version === 5) return reasonCodeText(code);
  return CONNACK_TEXT[code] ?? 'Connection Refused: unknown reason.';
}
