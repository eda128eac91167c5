import tls from 'node:tls';
import type { ListenerOptions } from '../broker/options.js';
import type { Logger } from '../broker/log.js';
import { stripV4Mapped, type OnConnection } from './tcp.js';

/** TLS listener. A failed handshake is logged and never affects other clients. */
export function createTlsServer(spec: ListenerOptions, onConnection: OnConnection, log: Logger): tls.Server {
  const t = spec.tls!;
  const server = tls.createServer({
    ca: t.ca, cert: t.cert, key: t.key, crl: t.crl, ciphers: t.ciphers,
    minVersion: t.minVersion, maxVersion: t.maxVersion,
    requestCert: t.requestCert ?? false,
    rejectUnauthorized: t.requestCert ?? false,
  }, (socket) => {
    socket.setNoDelay(true);
    let certificate: { subject?: string; cn?: string } | undefined;
    if (t.requestCert) {
      const peer = socket.getPeerCertificate();
      if (peer && peer.subject) {
        const subj = peer.subject as unknown as Record<string, string>;
        certificate = {
          cn: subj.CN,
          subject: Object.entries(subj).map(([k, v]) => `${k}=${v}`).join(','),
        };
      }
    }
    onConnection(socket, {
      remoteAddress: stripV4Mapped(socket.remoteAddress ?? 'unknown'),
      remotePort: socket.remotePort ?? 0,
      listenerPort: spec.port,
      certificate,
      certificateIdentity: spec.useSubjectAsUsername ? certificate?.subject
        : spec.useIdentityAsUsername ? certificate?.cn : undefined,
    });
  });
  server.on('tlsClientError', (err, socket) => {
    log.info(`OpenSSL Error on connection from ${stripV4Mapped(socket.remoteAddress ?? 'unknown')}: ${err.message}`);
    socket.destroy();
  });
  if (spec.maxConnections !== undefined && spec.maxConnections >= 0) server.maxConnections = spec.maxConnections;
  return server;
}
