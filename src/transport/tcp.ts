import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionInfo } from '../broker/connection.js';

export type OnConnection = (socket: Duplex, info: ConnectionInfo) => void;

/** Plain TCP listener: every accepted socket goes to `onConnection` with Nagle off. */
export function createTcpServer(onConnection: OnConnection, listenerPort: () => number, maxConnections?: number): net.Server {
  const server = net.createServer({ noDelay: true }, (socket) => {
    onConnection(socket, {
      remoteAddress: stripV4Mapped(socket.remoteAddress ?? 'unknown'),
      remotePort: socket.remotePort ?? 0,
      listenerPort: listenerPort(),
    });
  });
  if (maxConnections !== undefined && maxConnections >= 0) server.maxConnections = maxConnections;
  return server;
}

export function stripV4Mapped(addr: string): string {
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
