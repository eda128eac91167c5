import type http from 'node:http';
import type net from 'node:net';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { ListenerOptions } from '../broker/options.js';
import type { Logger } from '../broker/log.js';
import { createTcpServer, stripV4Mapped, type OnConnection } from './tcp.js';
import { createTlsServer } from './tls.js';
import type { WebSocketLimits } from './websocket.js';

/**
 * A listener spec with the mosquitto keys ListenerOptions does not carry yet (until it does, the CLI
 * passes them on the same object).
 */
export interface ListenerSpec extends ListenerOptions {
  /** socket_domain: restrict the listener to one address family */
  socketDomain?: 'ipv4' | 'ipv6';
}

export interface Listener {
  address: { host: string; port: number };
  /** what the listener speaks (the dashboard's console needs a WebSocket listener's port) */
  protocol?: 'mqtt' | 'websockets';
  tls?: boolean;
  /** a WebSocket listener's HTTP(S) server (an HTTP listener may share it) */
  httpServer?: http.Server;
  close(): Promise<void>;
}

/** Open every listener; on a failure close those already open and reject with a clear message. */
export async function listenAll(specs: ListenerSpec[], onConnection: OnConnection, log: Logger,
  limits: WebSocketLimits = {}): Promise<Listener[]> {
  const open: Listener[] = [];
  try {
    for (const spec of specs) open.push(await listenOne(spec, onConnection, log, limits));
  } catch (err) {
    await Promise.all(open.map((l) => l.close()));
    throw err;
  }
  return open;
}

async function listenOne(spec: ListenerSpec, onConnection: OnConnection, log: Logger, limits: WebSocketLimits): Promise<Listener> {
  let port = spec.port;
  const { host, ipv6Only } = await bindAddress(spec);
  const websockets = spec.protocol === 'websockets';
  // the `ws` package is loaded only for a WebSocket listener (a tenth of a second at start)
  const server: net.Server = websockets
    ? (await import('./websocket.js')).createWebSocketServer(spec, onConnection, log, limits)
    : spec.tls
    ? createTlsServer(spec, onConnection, log)
    : createTcpServer(onConnection, () => port, spec.maxConnections);
  // max_connections: node closes a socket over server.maxConnections itself; say so as mosquitto does
  server.on('drop', (d?: { remoteAddress?: string }) => {
    log.conn(`Client connection from ${stripV4Mapped(d?.remoteAddress ?? 'unknown')} denied: max_connections exceeded.`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`Error: Unable to listen on ${spec.host ?? host ?? '0.0.0.0'}:${spec.port}: ${err.code === 'EADDRINUSE' ? 'Address already in use' : err.message}`));
    });
    server.listen({ port: spec.port, host, ipv6Only, exclusive: true }, () => {
      const addr = server.address() as net.AddressInfo;
      port = addr.port;
      server.on('error', (err) => log.error(`listener on port ${port}: ${err.message}`));
      const family = addr.family === 'IPv6' ? 'ipv6' : 'ipv4';
      log.info(`Opening ${websockets ? 'websockets' : family} listen socket on port ${addr.port}.`);
      resolve({
        address: { host: addr.address, port: addr.port },
        protocol: websockets ? 'websockets' : 'mqtt',
        tls: spec.tls !== undefined,
        ...(websockets ? { httpServer: server as http.Server } : {}),
        // stop accepting at once; the broker ends the connections that are open (server.close's
        // callback would wait for every one of them)
        close: () => {
          server.close();
          // websockets: idle keep-alive HTTP connections (http_dir) too; WebSocket connections are the broker's
          if ('closeIdleConnections' in server) (server as { closeIdleConnections(): void }).closeIdleConnections();
          return Promise.resolve();
        },
      });
    });
  });
}

/**
 * Where to bind: the listener's address, restricted to one family by socket_domain (a host name is
 * resolved in that family; no address means all addresses of that family).
 */
async function bindAddress(spec: ListenerSpec): Promise<{ host?: string; ipv6Only?: boolean }> {
  const domain = spec.socketDomain;
  if (domain === undefined) return { host: spec.host };
  const family = domain === 'ipv4' ? 4 : 6;
  if (spec.host === undefined) return domain === 'ipv4' ? { host: '0.0.0.0' } : { host: '::', ipv6Only: true };
  const ip = isIP(spec.host);
  if (ip !== 0) {
    if (ip !== family) throw new Error(`Error: Unable to listen on ${spec.host}:${spec.port}: the address is not ${domain} (socket_domain ${domain}).`);
    return { host: spec.host, ipv6Only: family === 6 };
  }
  try {
    const found = await lookup(spec.host, { family });
    return { host: found.address, ipv6Only: family === 6 };
  } catch (err) {
    throw new Error(`Error: Unable to listen on ${spec.host}:${spec.port}: no ${domain} address for ${spec.host} (${(err as NodeJS.ErrnoException).code ?? String(err)}).`);
  }
}
