import type net from 'node:net';
import type { ListenerOptions } from '../broker/options.js';
import type { Logger } from '../broker/log.js';
import { createTcpServer, type OnConnection } from './tcp.js';
import { createTlsServer } from './tls.js';

export interface Listener {
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** Open every listener; on a failure close those already open and reject with a clear message. */
export async function listenAll(specs: ListenerOptions[], onConnection: OnConnection, log: Logger): Promise<Listener[]> {
  const open: Listener[] = [];
  try {
    for (const spec of specs) open.push(await listenOne(spec, onConnection, log));
  } catch (err) {
    await Promise.all(open.map((l) => l.close()));
    throw err;
  }
  return open;
}

function listenOne(spec: ListenerOptions, onConnection: OnConnection, log: Logger): Promise<Listener> {
  let port = spec.port;
  const server: net.Server = spec.tls
    ? createTlsServer(spec, onConnection, log)
    : createTcpServer(onConnection, () => port, spec.maxConnections);
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(`Error: Unable to listen on ${spec.host ?? '0.0.0.0'}:${spec.port}: ${err.code === 'EADDRINUSE' ? 'Address already in use' : err.message}`));
    });
    server.listen({ port: spec.port, host: spec.host, exclusive: true }, () => {
      const addr = server.address() as net.AddressInfo;
      port = addr.port;
      server.on('error', (err) => log.error(`listener on port ${port}: ${err.message}`));
      const family = addr.family === 'IPv6' ? 'ipv6' : 'ipv4';
      log.info(`Opening ${family} listen socket on port ${addr.port}.`);
      resolve({
        address: { host: addr.address, port: addr.port },
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
