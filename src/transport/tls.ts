/**
 * TLS listeners: mosquitto's per-listener TLS options (cafile, capath, certfile, keyfile, crlfile,
 * tls_version, ciphers, require_certificate, use_identity_as_username, use_subject_as_username), the
 * username taken from a verified client certificate, and certificate reload (SIGHUP) without dropping
 * connected clients. A failed handshake (a plain-TCP client, a bad or expired certificate, an old TLS
 * version) is logged with the peer's address and the reason and never affects another connection.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import type { ListenerOptions } from '../broker/options.js';
import type { Logger } from '../broker/log.js';
import { commonName, subjectOf } from '../auth/certificate.js';
import { stripV4Mapped, type OnConnection } from './tcp.js';
import { shortenPath } from '../util/text.js';

export type ListenerTls = NonNullable<ListenerOptions['tls']>;

/** The TLS keys of one listener in mosquitto.conf, as file paths. */
export interface TlsFiles {
  cafile?: string;
  capath?: string;
  certfile: string;
  keyfile: string;
  crlfile?: string;
  ciphers?: string;
  /** 'tlsv1.3' | 'tlsv1.2' | 'tlsv1.1': the lowest version accepted (mosquitto disables the older ones) */
  tlsVersion?: string;
  requireCertificate: boolean;
}

/** A client that sends nothing after connecting to a TLS port is dropped after this long. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 30_000;

const MIN_VERSIONS: Readonly<Record<string, tls.SecureVersion>> = {
  'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3',
};

/**
 * Reads a listener's certificate files and checks that they make a usable TLS context (the key matches
 * the certificate, every PEM parses). Throws an Error in mosquitto's words naming the file.
 */
export function loadTlsOptions(f: TlsFiles): ListenerTls {
  const read = (path: string, what: string, key: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`Error: Unable to load ${what} "${shortenPath(path)}" (${errCode(err)}). Check ${key}.`);
    }
  };
  const cert = read(f.certfile, 'server certificate', 'certfile');
  const key = read(f.keyfile, 'server key file', 'keyfile');
  const cas: Buffer[] = [];
  const crls: Buffer[] = [];
  if (f.cafile !== undefined) cas.push(read(f.cafile, 'CA certificates', 'cafile'));
  if (f.capath !== undefined) readCapath(f.capath, cas, crls);
  if (f.crlfile !== undefined) crls.push(read(f.crlfile, 'certificate revocation file', 'crlfile'));
  if (f.requireCertificate && cas.length === 0) {
    throw new Error('Error: require_certificate true needs cafile or capath to verify client certificates.');
  }
  const minVersion = f.tlsVersion === undefined ? 'TLSv1.2' : MIN_VERSIONS[f.tlsVersion];
  if (minVersion === undefined) throw new Error(`Error: Unsupported tls_version "${f.tlsVersion}".`);
  const opts: ListenerTls = {
    cert, key, minVersion, requestCert: f.requireCertificate,
    ...(cas.length > 0 ? { ca: Buffer.concat(cas.flatMap((c) => [c, Buffer.from('\n')])) } : {}),
    ...(crls.length > 0 ? { crl: Buffer.concat(crls.flatMap((c) => [c, Buffer.from('\n')])) } : {}),
    ...(f.ciphers !== undefined ? { ciphers: f.ciphers } : {}),
  };
  try {
    tls.createSecureContext(contextOptions(opts));
  } catch (err) {
    throw new Error(`Error: Unable to use the TLS files of the listener (certfile "${shortenPath(f.certfile)}", keyfile "${shortenPath(f.keyfile)}"`
      + `${f.cafile !== undefined ? `, cafile "${shortenPath(f.cafile)}"` : ''}${f.crlfile !== undefined ? `, crlfile "${shortenPath(f.crlfile)}"` : ''}): `
      + `${err instanceof Error ? err.message : String(err)}.`);
  }
  return opts;
}

/** Every PEM file in a capath directory: certificates into `cas`, CRLs into `crls` (c_rehash's `.r0` files). */
function readCapath(dir: string, cas: Buffer[], crls: Buffer[]): void {
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (err) {
    throw new Error(`Error: Unable to load CA certificates from capath "${shortenPath(dir)}" (${errCode(err)}). Check capath.`);
  }
  let found = 0;
  for (const name of names) {
    const path = join(dir, name);
    let text: Buffer;
    try {
      if (!statSync(path).isFile()) continue;
      text = readFileSync(path);
    } catch {
      continue;
    }
    const s = text.toString('latin1');
    if (s.includes('-----BEGIN CERTIFICATE-----')) { cas.push(text); found++; }
    if (s.includes('-----BEGIN X509 CRL-----')) crls.push(text);
  }
  if (found === 0) throw new Error(`Error: No CA certificates found in capath "${dir}". Check capath.`);
}

function contextOptions(t: ListenerTls): tls.SecureContextOptions {
  return {
    cert: t.cert, key: t.key, ca: t.ca, crl: t.crl === undefined ? undefined : splitCrls(t.crl), ciphers: t.ciphers,
    minVersion: t.minVersion, maxVersion: t.maxVersion,
  };
}

/** Node reads one CRL per buffer; a crlfile (or capath) may hold several, as mosquitto reads them all. */
function splitCrls(pem: string | Buffer): string[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN X509 CRL-----[\s\S]*?-----END X509 CRL-----/g);
  return blocks ?? [pem.toString('latin1')];
}

const servers = new WeakMap<ListenerOptions, tls.Server>();

/** Replaces a running TLS listener's certificates (SIGHUP); connected clients keep their sessions. */
export function reloadTlsListener(spec: ListenerOptions, t: ListenerTls): boolean {
  const server = servers.get(spec);
  if (server === undefined) return false;
  server.setSecureContext(contextOptions(t));
  return true;
}

/** The options of a TLS server for a listener (TCP or WebSocket): its certificates, and client certificates asked for, verified below. */
export function tlsServerOptions(t: ListenerTls): tls.TlsOptions {
  return {
    ...contextOptions(t),
    requestCert: t.requestCert ?? false,
    // verified below, so that a refused certificate is logged with its reason (Node would drop it silently)
    rejectUnauthorized: false,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  };
}

/** What a verified client certificate tells the broker about a connection. */
export interface PeerCertificate {
  certificate?: { subject?: string; cn?: string };
  certificateIdentity?: string;
}

/**
 * After the handshake: with require_certificate, a missing or unverified client certificate is logged
 * and the socket destroyed (undefined is returned); otherwise what the certificate names.
 */
export function verifyPeer(socket: tls.TLSSocket, spec: ListenerOptions, port: number, log: Logger): PeerCertificate | undefined {
  if (!(spec.tls?.requestCert ?? false)) return {};
  const x509 = socket.getPeerX509Certificate();
  if (!socket.authorized || x509 === undefined) {
    const code = x509 === undefined ? 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' : String(socket.authorizationError);
    const err = Object.assign(new Error(x509 === undefined ? 'peer did not return a certificate' : code), { code });
    log.info(`Client connection from ${peerOf(socket)} on port ${port} failed: ${describeTlsError(err)}.`);
    socket.destroy();
    return undefined;
  }
  // only a certificate that verified against cafile/capath (and the CRL) names the client
  const peer = socket.getPeerCertificate();
  const certificate = { subject: subjectOf(x509), cn: commonName(peer.subject as unknown as Record<string, string | string[]>) };
  return {
    certificate,
    // mosquitto: use_identity_as_username wins when both are set
    certificateIdentity: spec.useIdentityAsUsername ? certificate.cn : spec.useSubjectAsUsername ? certificate.subject : undefined,
  };
}

/** Failed handshakes are logged with the peer and the reason; the listener is reloadable (SIGHUP). */
export function watchTlsServer(server: tls.Server, spec: ListenerOptions, port: () => number, log: Logger): void {
  server.on('tlsClientError', (err, socket) => {
    const line = `Client connection from ${peerOf(socket)} on port ${port()} failed: ${describeTlsError(err as NodeJS.ErrnoException)}.`;
    // a peer that connects and goes away without a byte (a port probe) is not worth a notice
    if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' && socket.remoteAddress === undefined) log.debug(line);
    else log.info(line);
    socket.destroy();
  });
  servers.set(spec, server);
}

/** TLS listener. A failed handshake is logged and never affects other clients. */
export function createTlsServer(spec: ListenerOptions, onConnection: OnConnection, log: Logger): tls.Server {
  let port = spec.port;
  const server = tls.createServer(tlsServerOptions(spec.tls!), (socket) => {
    const peer = verifyPeer(socket, spec, port, log);
    if (peer === undefined) return;
    socket.setNoDelay(true);
    onConnection(socket, {
      remoteAddress: stripV4Mapped(socket.remoteAddress ?? 'unknown'),
      remotePort: socket.remotePort ?? 0,
      listenerPort: port,
      certificate: peer.certificate,
      certificateIdentity: peer.certificateIdentity,
    });
  });
  server.once('listening', () => { port = (server.address() as AddressInfo).port; });
  watchTlsServer(server, spec, () => port, log);
  if (spec.maxConnections !== undefined && spec.maxConnections >= 0) server.maxConnections = spec.maxConnections;
  return server;
}

/** A TLS handshake error in words an operator can act on, with OpenSSL's own text after it. */
export function describeTlsError(err: NodeJS.ErrnoException & { reason?: string }): string {
  const code = err.code ?? '';
  // OpenSSL's messages span lines and name source files; its `reason` is the useful part
  const text = err.reason ?? err.message.split('\n')[0]!.trim();
  const raw = code === '' || code === text ? text : `${code}: ${text}`;
  let why: string | undefined;
  if (/WRONG_VERSION_NUMBER|HTTP_REQUEST|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LENGTH_MISMATCH|RECORD_LAYER_FAILURE/.test(code)
      || /wrong version number|http request|unknown protocol|packet length too long/i.test(err.message)) {
    why = 'not a TLS handshake (a plain MQTT/TCP client on a TLS port?)';
  } else if (/UNSUPPORTED_PROTOCOL|NO_PROTOCOLS_AVAILABLE|VERSION_TOO_LOW/.test(code) || /unsupported protocol/i.test(err.message)) {
    why = 'the client offered only TLS versions this listener refuses (tls_version)';
  } else if (/PEER_DID_NOT_RETURN_A_CERTIFICATE/.test(code) || /did not return a certificate/i.test(err.message)) {
    why = 'no client certificate (require_certificate true)';
  } else if (code === 'CERT_HAS_EXPIRED' || /certificate has expired/i.test(err.message)) {
    why = 'the client certificate has expired';
  } else if (code === 'CERT_NOT_YET_VALID') {
    why = 'the client certificate is not valid yet';
  } else if (code === 'CERT_REVOKED' || /certificate revoked/i.test(err.message)) {
    why = 'the client certificate is revoked (crlfile)';
  } else if (/UNABLE_TO_(GET_ISSUER|VERIFY_LEAF)|SELF_SIGNED|CERT_SIGNATURE_FAILURE|CERT_UNTRUSTED/.test(code)) {
    why = 'the client certificate is not signed by a trusted CA (cafile/capath)';
  } else if (/timeout/i.test(err.message)) {
    why = `no TLS handshake within ${TLS_HANDSHAKE_TIMEOUT_MS / 1000} s`;
  } else if (code === 'ECONNRESET') {
    why = 'the client closed the connection during the TLS handshake';
  }
  return why === undefined ? `TLS handshake failed (${raw})` : `${why} (${raw})`;
}

function peerOf(socket: tls.TLSSocket): string {
  const address = socket.remoteAddress;
  return address === undefined ? 'an unknown address' : `${stripV4Mapped(address)}:${socket.remotePort ?? 0}`;
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}
