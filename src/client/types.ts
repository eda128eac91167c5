/** Data types shared by the client state machine (state.ts) and the I/O shell (client.ts). */
import type { ConnackPacket, Packet, Properties, ProtocolVersion, QoS, Will } from '../codec/types.js';

export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** the packet identifier of a QoS 1/2 message */
  packetId?: number;
  properties?: Properties;
}

export interface OutgoingMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
}

export type Action =
  | { type: 'send'; packet: Packet; mid?: number }
  | { type: 'message'; message: Message }
  | { type: 'resolve'; op: number; value: unknown }
  | { type: 'reject'; op: number; error: Error }
  | { type: 'connected'; connack: ConnackPacket }
  /** close the transport; `error` is undefined for a clean end after DISCONNECT */
  | { type: 'close'; error?: Error };

export interface ClientStateOptions {
  protocolVersion: ProtocolVersion;
  clientId: string;
  clean: boolean;
  /** seconds, 0 = off */
  keepalive: number;
  will?: Will;
  username?: string;
  password?: Buffer;
  /** CONNECT properties (5.0) */
  properties?: Properties;
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
}

/** 5.0 properties a client may put on CONNECT. */
export type ConnectProperties = Pick<Properties,
  'sessionExpiryInterval' | 'receiveMaximum' | 'maximumPacketSize' | 'topicAliasMaximum' | 'requestResponseInformation'
  | 'requestProblemInformation' | 'userProperties' | 'authenticationMethod' | 'authenticationData'>;

/** 5.0 properties of an outgoing PUBLISH. */
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
