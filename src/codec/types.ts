/**
 * MQTT packets as plain data: a discriminated union on `type`.
 * Shared by the broker, the client library and the test tools. No I/O here.
 *
 * Protocol versions are the protocol level byte of CONNECT:
 * 3 = MQTT 3.1 ("MQIsdp"), 4 = MQTT 3.1.1, 5 = MQTT 5.0.
 */
export type ProtocolVersion = 3 | 4 | 5;
export type QoS = 0 | 1 | 2;

/**
 * MQTT 5.0 properties (spec 2.2.2.2). Every property is optional; a packet only carries
 * the ones the spec allows for its type (the decoder rejects others with MalformedPacketError 0x81,
 * the encoder with CodecError). Byte-valued flags are kept as numbers (0/1) so that what was on
 * the wire is what is carried. Decoded packets without properties have no `properties` key.
 */
export interface Properties {
  payloadFormatIndicator?: number;        // 0x01 byte, PUBLISH, Will
  messageExpiryInterval?: number;         // 0x02 u32, PUBLISH, Will
  contentType?: string;                   // 0x03 utf8, PUBLISH, Will
  responseTopic?: string;                 // 0x08 utf8, PUBLISH, Will
  correlationData?: Buffer;               // 0x09 binary, PUBLISH, Will
  subscriptionIdentifiers?: number[];     // 0x0B varint, PUBLISH (several), SUBSCRIBE (one)
  sessionExpiryInterval?: number;         // 0x11 u32, CONNECT, CONNACK, DISCONNECT
  assignedClientIdentifier?: string;      // 0x12 utf8, CONNACK
  serverKeepAlive?: number;               // 0x13 u16, CONNACK
  authenticationMethod?: string;          // 0x15 utf8, CONNECT, CONNACK, AUTH
  authenticationData?: Buffer;            // 0x16 binary, CONNECT, CONNACK, AUTH
  requestProblemInformation?: number;     // 0x17 byte, CONNECT
  willDelayInterval?: number;             // 0x18 u32, Will
  requestResponseInformation?: number;    // 0x19 byte, CONNECT
  responseInformation?: string;           // 0x1A utf8, CONNACK
  serverReference?: string;               // 0x1C utf8, CONNACK, DISCONNECT
  reasonString?: string;                  // 0x1F utf8, acks, CONNACK, DISCONNECT, AUTH
  receiveMaximum?: number;                // 0x21 u16, CONNECT, CONNACK
  topicAliasMaximum?: number;             // 0x22 u16, CONNECT, CONNACK
  topicAlias?: number;                    // 0x23 u16, PUBLISH
  maximumQoS?: number;                    // 0x24 byte, CONNACK
  retainAvailable?: number;               // 0x25 byte, CONNACK
  userProperties?: Array<[string, string]>; // 0x26 utf8 pair, all packets with properties; order kept
  maximumPacketSize?: number;             // 0x27 u32, CONNECT, CONNACK
  wildcardSubscriptionAvailable?: number; // 0x28 byte, CONNACK
  subscriptionIdentifiersAvailable?: number; // 0x29 byte, CONNACK
  sharedSubscriptionAvailable?: number;   // 0x2A byte, CONNACK
}

export interface Will {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties; // v5 will properties
}

export interface ConnectPacket {
  type: 'connect';
  protocolName: string;            // 'MQTT' (3.1.1, 5.0) or 'MQIsdp' (3.1)
  protocolVersion: ProtocolVersion;
  clean: boolean;                  // clean session (3.x) / clean start (5.0)
  keepalive: number;               // seconds, 0 = off
  clientId: string;
  will?: Will;
  username?: string;
  password?: Buffer;
  properties?: Properties;
  /** 3.1.1 bridge extension: high bit of the protocol level byte (0x80), mosquitto's try_private (the broker reads it). */
  bridge?: boolean;
}

export interface ConnackPacket {
  type: 'connack';
  sessionPresent: boolean;
  /** 3.x return code (0..5) or 5.0 reason code */
  reasonCode: number;
  properties?: Properties;
}

export interface PublishPacket {
  type: 'publish';
  topic: string;       // may be '' in 5.0 when a topic alias is used
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  packetId?: number;   // present iff qos > 0
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP share one shape. */
export interface AckPacket {
  type: 'puback' | 'pubrec' | 'pubrel' | 'pubcomp';
  packetId: number;
  reasonCode?: number;  // 5.0 only (always set when decoded as 5.0); absent or 0 = success
  properties?: Properties;
}

export interface Subscription {
  topic: string;               // topic filter
  qos: QoS;
  noLocal?: boolean;           // 5.0
  retainAsPublished?: boolean; // 5.0
  retainHandling?: 0 | 1 | 2;  // 5.0
}

export interface SubscribePacket {
  type: 'subscribe';
  packetId: number;
  subscriptions: Subscription[];
  properties?: Properties;
}

export interface SubackPacket {
  type: 'suback';
  packetId: number;
  /** granted QoS (0..2) or failure (0x80, or a 5.0 reason code >= 0x80) per subscription */
  reasonCodes: number[];
  properties?: Properties;
}

export interface UnsubscribePacket {
  type: 'unsubscribe';
  packetId: number;
  topics: string[];
  properties?: Properties;
}

export interface UnsubackPacket {
  type: 'unsuback';
  packetId: number;
  reasonCodes?: number[]; // 5.0 only (always set when decoded as 5.0, possibly empty)
  properties?: Properties;
}

export interface PingreqPacket { type: 'pingreq' }
export interface PingrespPacket { type: 'pingresp' }

export interface DisconnectPacket {
  type: 'disconnect';
  reasonCode?: number;  // 5.0 only (always set when decoded as 5.0); absent = 0 normal disconnection
  properties?: Properties;
}

export interface AuthPacket {
  type: 'auth';
  reasonCode: number;   // 0x00 success, 0x18 continue, 0x19 re-authenticate
  properties?: Properties;
}

export type Packet =
  | ConnectPacket | ConnackPacket | PublishPacket | AckPacket
  | SubscribePacket | SubackPacket | UnsubscribePacket | UnsubackPacket
  | PingreqPacket | PingrespPacket | DisconnectPacket | AuthPacket;

export type PacketType = Packet['type'];
