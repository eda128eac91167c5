/**
 * Midge's public surface. Everything else is internal.
 */
export { createBroker, Broker, type BrokerEvents, type BrokerStats } from './broker/broker.js';
export { defaultBrokerOptions, type BrokerOptions, type ListenerOptions } from './broker/options.js';
export type { BrokerHooks, ClientInfo, Message, AuthResult } from './broker/types.js';
export { Logger } from './broker/log.js';
export type { Store } from './store/store.js';
export {
  MqttError, MalformedPacketError, ProtocolError, PacketTooLargeError, UnsupportedProtocolVersionError, CodecError,
} from './codec/errors.js';
export type {
  Packet, PublishPacket, ConnectPacket, Properties, QoS, ProtocolVersion, Will, Subscription,
} from './codec/types.js';
