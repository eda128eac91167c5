/** The client library's public surface. */
export { connect, MqttClient } from './client.js';
export type { ClientEvents, EndOptions, PublishOptions, SubscribeOptions } from './client.js';
export type { ConnectOptions, WillOptions } from './options.js';
export type { ReconnectOptions } from './reconnect.js';
export type { MessagesOptions } from './messages.js';
export type {
  Message, ConnectProperties, PublishProperties, WillProperties, SubscribeProperties, UnsubscribeProperties,
  DisconnectProperties,
} from './types.js';
export {
  ClientError, ConnectionRefusedError, TimeoutError, ClientClosedError, ConnectionLostError, TransportError,
  SubscribeError, PublishError, QueueFullError, InvalidArgumentError,
} from './errors.js';
export { registerTransport, type TlsOptions, type TransportDefinition, type TransportOptions } from '../transport/connect.js';
