/** The client library's public surface. */
export { connect, MqttClient } from './client.js';
export type { ClientEvents, EndOptions, PublishOptions, SubscribeOptions } from './api-types.js';
export type { AuthOptions, ConnectOptions, WillOptions } from './options.js';
export type { ConnackInfo } from './connack.js';
export type { ReconnectOptions } from './reconnect.js';
export type { MessagesOptions } from './messages.js';
export type {
  Message, ConnectProperties, PublishProperties, WillProperties, SubscribeProperties, UnsubscribeProperties,
  DisconnectProperties,
} from './types.js';
export {
  ClientError, ConnectionRefusedError, ServerRedirectError, TimeoutError, ClientClosedError, ConnectionLostError,
  TransportError, SubscribeError, UnsubscribeError, PublishError, MaximumPacketSizeError, AuthenticationError,
  QueueFullError, InvalidArgumentError, type ConnectionLostDetails,
} from './errors.js';
export { registerTransport, type TlsOptions, type TransportDefinition, type TransportOptions } from '../transport/connect.js';
