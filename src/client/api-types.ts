/** Option and event types of the client's public API (client.ts). */
import type { ConnackPacket, Packet, QoS } from '../codec/types.js';
import type { DisconnectProperties, Message, PublishProperties, SubscribeProperties } from './types.js';

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  properties?: PublishProperties;
  /**
   * 5.0 topic alias: 'auto' picks one (up to the broker's Topic Alias Maximum, least recently used
   * reused), a number uses that alias, false never (overrides the `autoTopicAlias` client option).
   * The first PUBLISH carries topic and alias, later ones an empty topic.
   */
  topicAlias?: 'auto' | number | false;
}

export interface SubscribeOptions {
  qos?: QoS;
  /** 5.0 subscription options */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
  /** 5.0 Subscription Identifier (1..268435455), reported back on matching messages */
  subscriptionIdentifier?: number;
  properties?: SubscribeProperties;
}

export interface EndOptions {
  /** DISCONNECT at once and reject what is pending, instead of waiting for in-flight messages */
  force?: boolean;
  /** ms to wait for in-flight messages before forcing (default 10000) */
  timeout?: number;
  /** 5.0 DISCONNECT reason code (4 = publish the will) */
  reasonCode?: number;
  /**
   * 5.0 DISCONNECT properties: reason string, user properties, and a new session expiry interval
   * (ignored when CONNECT had none or 0, which the spec does not allow to change [MQTT-3.14.2-2])
   */
  properties?: DisconnectProperties;
}

export interface ClientEvents {
  /** every successful CONNACK, the first one and each after a reconnect */
  connect: (connack: ConnackPacket) => void;
  /** a reconnect attempt starts */
  reconnect: (attempt: number) => void;
  /** the connection closed; a reconnect may follow */
  offline: (error: Error | undefined) => void;
  message: (message: Message) => void;
  /** problems that do not end the client (a failed reconnect attempt); emitted only when listened to */
  error: (error: Error) => void;
  /** the client is closed for good */
  end: () => void;
  packetsend: (packet: Packet, mid: number | undefined) => void;
  packetreceive: (packet: Packet) => void;
  newListener: (event: string | symbol, listener: (...args: unknown[]) => void) => void;
}
