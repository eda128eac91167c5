/**
 * The client library in the browser: the same API as `midge`'s client in Node (`connect`, `MqttClient`,
 * the errors), over the browser's WebSocket (`ws://`, `wss://`). Bundled by scripts/build-browser.mjs into
 * dist/browser/midge-client.js (an ES module, no Node built-ins: Buffer and EventEmitter come from small
 * pure-JS polyfills, `../transport/connect.js` is replaced by ./transport.ts).
 */
export * from '../client/index.js';
export { Buffer } from 'buffer';
