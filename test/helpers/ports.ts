import { connect, createServer } from 'node:net';

/** ports this process was given by freePort (the kernel may give a port again once it is closed) */
const given = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it; we listen, read it, close),
 * never one that this process was given before: a test that asks for two ports (two listeners) before
 * anything listens on the first would otherwise sometimes get the same port twice.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await pickPort();
    if (!given.has(port) || attempt >= 50) {
      given.add(port);
      return port;
    }
  }
}

function pickPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: no TCP address'));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}

/** Whether nothing listens on 127.0.0.1:port right now (we could listen there). */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Whether a TCP connection to 127.0.0.1:port is accepted (within 1 s). */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
    socket.once('timeout', () => finish(false));
  });
}
