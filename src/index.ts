/**
 * Midge's public surface. Everything else is internal.
 */
export {
  createBroker, Broker, type BrokerEvents, type BrokerStats, type PublishInput, type ClientSummary, type SessionSummary, type SubscriptionSummary,
} from './broker/broker.js';
export { startHttpListener, type HttpListener, type HttpListenerOptions, type HttpAuthOptions } from './http/server.js';
export { defaultBrokerOptions, type BrokerOptions, type ListenerOptions } from './broker/options.js';
export type {
  BrokerHooks, ClientInfo, Message as BrokerMessage, AuthResult, AuthExchange, AuthStep, SessionInfo, ForwardMessage, ConnectionInfo,
} from './broker/types.js';
export { CHALLENGE_METHOD, challengeAuth, challengeResponse } from './auth/challenge.js';
export { Logger } from './broker/log.js';
export type { Store, Change, StoredMessage, StoredSession, StoredSubscription, StoredWill, QueuedRef, InflightRef, Window } from './store/store.js';
export { StoreError } from './store/store.js';
export { MemoryStore } from './store/memory.js';
export { openSqliteStore, type SqliteStoreOptions } from './store/sqlite.js';
export { openSqliteThreadStore } from './store/sqlite-thread.js';
export type { Clock } from './util/clock.js';

// the client library
export * from './client/index.js';
export {
  MqttError, MalformedPacketError, ProtocolError, PacketTooLargeError, UnsupportedProtocolVersionError, CodecError,
} from './codec/errors.js';
export type {
  Packet, PublishPacket, ConnectPacket, Properties, QoS, ProtocolVersion, Will, Subscription,
} from './codec/types.js';
