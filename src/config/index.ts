/** mosquitto.conf parsing into the broker's typed options. */
export { parseConfig, parseConfigFile, keyLocation } from './parse.js';
export { ConfigError } from './errors.js';
export { defaultBrokerConfig, defaultListenerConfig } from './options.js';
export type { BrokerConfig, ListenerConfig } from './options.js';
export { checkSupported, type SupportWarning } from './support.js';
export { createConfiguredLogger, type ConfiguredLogger } from './logging.js';
export { parseBridgeTopic, type BridgeConfig, type BridgeTopic, type BridgeAddress, type BridgeDirection } from './bridge.js';
