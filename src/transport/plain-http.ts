/**
 * The plain (not upgrade) HTTP requests of a WebSocket listener, handed to an HTTP listener that shares
 * its port (`http_listener` on the port of a `protocol websockets` listener). Apart from
 * websocket.ts, so that the HTTP listener does not load the `ws` package (a tenth of a second at
 * start) when there is no WebSocket listener.
 */
import type http from 'node:http';

/** A handler of the plain (not upgrade) HTTP requests of a WebSocket listener: an HTTP listener sharing its port. */
export type PlainRequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const plainHandlers = new WeakMap<http.Server, PlainRequestHandler>();

/**
 * Hands the plain HTTP requests of a WebSocket listener's server to `handler` instead of `http_dir`
 * (upgrades stay MQTT). One handler per server; returns the function that detaches it.
 */
export function attachPlainRequestHandler(server: http.Server, handler: PlainRequestHandler): () => void {
  if (plainHandlers.has(server)) throw new Error('an HTTP listener already shares this WebSocket listener');
  plainHandlers.set(server, handler);
  return () => { if (plainHandlers.get(server) === handler) plainHandlers.delete(server); };
}

/** the handler attached to `server`, if any */
export function plainHandlerOf(server: http.Server): PlainRequestHandler | undefined {
  return plainHandlers.get(server);
}
