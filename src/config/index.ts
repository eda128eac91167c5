/** mosquitto.conf parsing into the broker's typed options. */
export { parseConfig, parseConfigFile } from './parse.js';
export { ConfigError } from './errors.js';
export { defaultBrokerConfig, defaultListenerConfig } from './options.js';
export type { BrokerConfig, ListenerConfig } from './options.js';
