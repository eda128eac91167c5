/** Data types shared by the client state machine (state.ts) and the I/O shell (client.ts). */
import type { ConnackPacket, Packet, Properties, ProtocolVersion, QoS, Will } from '../codec/types.js';

/**
 * A received message. `properties` holds every 5.0 PUBLISH property as the broker sent it, in wire
 * order: payloadFormatIndicator, messageExpiryInterval (what is left of it), contentType,
 * responseTopic, correlationData, userProperties (in order, repeats kept), subscriptionIdentifiers
 * (of every matching subscription) and topicAlias (when the broker used one; `topic` is resolved).
 */
export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** the packet identifier of a QoS 1/2 message */
  packetId?: number;
  properties?: Properties;
  /**
   * With `manualAck`: acknowledge this QoS 1/2 message (PUBACK / PUBREC) once it is safe with you;
   * until then the broker keeps it in flight and sends it again after a reconnect. Acknowledge in
   * the order the messages came [MQTT-4.6.0-2]. Absent without `manualAck` and for QoS 0.
   */
  ack?: () => void;
  /** @internal manualAck: what acknowledge() needs */
  ackToken?: { connection: number; packetId: number; qos: 1 | 2 };
}

export interface OutgoingMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
  /** 5.0: 'auto' = let the client pick an alias; a number = use this alias; false = never */
  topicAlias?: 'auto' | number | false;
}

export type Action =
  /** `bytes`: the packet already encoded (by the state machine, to check its size) */
  | { type: 'send'; packet: Packet; mid?: number; bytes?: Buffer }
  | { type: 'message'; message: Message }
  | { type: 'resolve'; op: number; value: unknown }
  | { type: 'reject'; op: number; error: Error }
  | { type: 'connected'; connack: ConnackPacket }
  /** 5.0 AUTH 0x18 from the broker: ask the application for the answer, then call `authRespond(token, data)` */
  | { type: 'auth'; token: number; data: Buffer | undefined; reauth: boolean }
  /** close the transport; `error` is undefined for a clean end after DISCONNECT */
  | { type: 'close'; error?: Error };

export interface ClientStateOptions {
  protocolVersion: ProtocolVersion;
  /** QoS 1/2 messages are acknowledged by the application (Message.ack), not on receipt */
  manualAck?: boolean;
  clientId: string;
  clean: boolean;
  /** seconds, 0 = off */
  keepalive: number;
  will?: Will;
  username?: string;
  password?: Buffer;
  /** CONNECT properties (5.0) */
  properties?: Properties;
  /** 5.0 enhanced authentication: the method and the data put in CONNECT */
  auth?: { method: string; data?: Buffer };
  /** 5.0: give every publish a topic alias unless it says otherwise (`topicAlias: false`) */
  autoTopicAlias?: boolean;
  /** ms to wait for CONNACK */
  connectTimeout: number;
  /** ms to wait for PINGRESP; default one keepalive period */
  pingTimeout?: number;
  /** outgoing QoS 1/2 window; the broker's Receive Maximum lowers it */
  maxInflight: number;
  /** publishes waiting for a connection or for room in the window */
  queueLimit: number;
  /** re-subscribe after a reconnect that did not resume a session */
  resubscribe: boolean;
  /** 3.x: set the bridge bit (0x80) of the protocol level, as mosquitto's bridges do (try_private) */
  bridge?: boolean;
}

/** 5.0 properties a client may put on CONNECT (authentication ones: prefer the `auth` option). */
export type ConnectProperties = Pick<Properties,
  'sessionExpiryInterval' | 'receiveMaximum' | 'maximumPacketSize' | 'topicAliasMaximum' | 'requestResponseInformation'
  | 'requestProblemInformation' | 'userProperties' | 'authenticationMethod' | 'authenticationData'>;

/** 5.0 properties of an outgoing PUBLISH (topic aliases: the `topicAlias` publish option). */
export type PublishProperties = Pick<Properties,
  'payloadFormatIndicator' | 'messageExpiryInterval' | 'contentType' | 'responseTopic' | 'correlationData' | 'userProperties'>;

/** 5.0 properties of the will message. */
export type WillProperties = PublishProperties & Pick<Properties, 'willDelayInterval'>;

/** 5.0 properties of SUBSCRIBE (one subscription identifier at most). */
export type SubscribeProperties = Pick<Properties, 'subscriptionIdentifiers' | 'userProperties'>;

/** 5.0 properties of UNSUBSCRIBE. */
export type UnsubscribeProperties = Pick<Properties, 'userProperties'>;

/** 5.0 properties of the client's DISCONNECT. */
export type DisconnectProperties = Pick<Properties, 'sessionExpiryInterval' | 'reasonString' | 'userProperties'>;
