/**
 * The pieces `midge pub`, `midge sub` and `midge rr` share once the command line is parsed: the client
 * options and broker URL (TLS files included), mosquitto's connection error texts and exit codes, the
 * `-d` log lines and the DISCONNECT properties.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SecureVersion } from 'node:tls';
import type { ConnectOptions, EndOptions, MqttClient } from '../client/index.js';
import { ConnectionLostError, ConnectionRefusedError, TimeoutError, TransportError } from '../client/index.js';
import { describeReceived, describeSent } from '../client/debug-log.js';
import { generateClientId } from '../client/options.js';
import type { CliConfig } from './client-options.js';

/** The broker URL and client options for a parsed command line; throws CliError for TLS file problems. */
export function connectTarget(c: CliConfig, reconnect: boolean): { url: string; options: ConnectOptions } {
  const tlsOn = c.cafile !== undefined || c.capath !== undefined || c.secureScheme || c.tlsUseOsCerts || c.port === 8883;
  const port = c.port ?? (c.cafile !== undefined || c.capath !== undefined ? 8883 : 1883);
  const host = c.host.includes(':') && !c.host.startsWith('[') ? `[${c.host}]` : c.host;
  const id = c.id ?? (c.idPrefix !== undefined ? `${c.idPrefix}${process.pid}` : c.protocolVersion === 3 ? generateClientId('mosq-') : '');
  const options: ConnectOptions = {
    clientId: id, clean: c.clean, keepalive: c.keepalive, protocolVersion: c.protocolVersion, maxInflight: c.maxInflight,
    connectTimeout: 60_000, reconnect: reconnect ? { initialDelay: 1000, maxDelay: 10_000 } : false,
    queueLimit: 1_000_000,
  };
  if (c.username !== undefined) options.username = c.username;
  if (c.password !== undefined) options.password = c.password;
  if (c.willTopic !== undefined) {
    options.will = { topic: c.willTopic, payload: c.willPayload ?? '', qos: c.willQos, retain: c.willRetain };
    if (Object.keys(c.props.will).length > 0) options.will.properties = c.props.will;
  }
  const connectProps = { ...c.props.connect };
  if (c.msgCount > 0 && c.msgCount < 20 && c.protocolVersion === 5) connectProps.receiveMaximum ??= c.msgCount;
  if (Object.keys(connectProps).length > 0) options.properties = connectProps;
  if (tlsOn) {
    const versions: Record<string, SecureVersion> = { 'tlsv1.3': 'TLSv1.3', 'tlsv1.2': 'TLSv1.2', 'tlsv1.1': 'TLSv1.1' };
    if (c.tlsVersion !== undefined && !versions[c.tlsVersion]) throw new CliError('Error: Problem setting TLS options, check the options are valid.\n', 1);
    const read = (f: string): Buffer => {
      try { return readFileSync(f); } catch { throw new CliError('Error: Problem setting TLS options: File not found.\n', 1); }
    };
    const tls: NonNullable<ConnectOptions['tls']> = { rejectUnauthorized: true, skipHostnameCheck: c.insecure };
    const ca: Buffer[] = [];
    if (c.cafile !== undefined) ca.push(read(c.cafile));
    if (c.capath !== undefined) {
      let names: string[];
      try { names = readdirSync(c.capath); } catch { throw new CliError('Error: Problem setting TLS options: File not found.\n', 1); }
      for (const n of names) if (/\.(pem|crt)$|^[0-9a-f]{8}\.\d+$/i.test(n)) ca.push(read(join(c.capath, n)));
    }
    if (ca.length > 0) tls.ca = ca;
    if (c.cert !== undefined) tls.cert = read(c.cert);
    if (c.key !== undefined) tls.key = read(c.key);
    if (c.tlsVersion !== undefined) tls.minVersion = tls.maxVersion = versions[c.tlsVersion]!;
    if (c.ciphers !== undefined) tls.ciphers = c.ciphers;
    if (c.alpn !== undefined) tls.alpnProtocols = [c.alpn];
    options.tls = tls;
  }
  if (c.bindAddress !== undefined) options.localAddress = c.bindAddress;
  return { url: `${tlsOn ? 'mqtts' : 'mqtt'}://${host}:${port}`, options };
}

/**
 * mosquitto's check when it makes the client (after the options, and for pub after reading the message):
 * an empty -i, or an -i / -I / -u that was not valid UTF-8. The text to print (exit code 1), or undefined.
 */
export function identityError(c: CliConfig): string | undefined {
  if (c.id === '' || c.malformedId) return c.kind === 'pub' ? 'Error: Invalid id.\n' : 'Error: Invalid id and/or clean_session.\n';
  if (c.malformedUsername) return 'Error: Problem setting username and/or password.\n';
  return undefined;
}

/** An error with the text mosquitto's tool prints and its exit code. */
export class CliError extends Error {
  constructor(readonly text: string, readonly exitCode: number) { super(text.trim()); }
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'Connection refused', ETIMEDOUT: 'Connection timed out', EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable', EADDRNOTAVAIL: 'Cannot assign requested address',
  ECONNRESET: 'Connection reset by peer', EACCES: 'Permission denied', EPIPE: 'Broken pipe',
};

/**
 * What mosquitto_pub/sub print when connecting fails, and their exit code: the CONNACK code when refused,
 * 1 for a socket error, 8 for TLS, 7 for a lost connection. `debugLines` go to stdout with `-d`.
 */
export function describeConnectError(c: CliConfig, e: unknown): { text: string; exitCode: number; debugLines: string[] } {
  if (e instanceof CliError) return { text: e.text, exitCode: e.exitCode, debugLines: [] };
  if (e instanceof ConnectionRefusedError) {
    let text = `Connection error: ${e.text}`;
    if (e.protocolVersion === 5 && e.returnCode === 0x84) text += '. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.';
    text += '\n';
    if (c.kind === 'pub') {
      text += e.protocolVersion === 5 ? 'Error: A network protocol error occurred when communicating with the broker.\n' : 'Error: The connection was refused.\n';
    }
    return { text, exitCode: e.returnCode, debugLines: [] };
  }
  if (e instanceof TransportError) {
    if (e.tls) {
      const lines = e.code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ['Error: host name verification failed.'] : [];
      lines.push(`TLS Error: ${e.message}${e.code ? ` (${e.code})` : ''}`);
      return { text: 'Error: A TLS error occurred.\n', exitCode: 8, debugLines: lines };
    }
    if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN' || e.code === 'EAI_FAIL') {
      return { text: 'Unable to connect (Lookup error.).\n', exitCode: 1, debugLines: [] };
    }
    return { text: `Error: ${ERRNO_TEXT[e.code ?? ''] ?? e.message}\n`, exitCode: 1, debugLines: [] };
  }
  if (e instanceof TimeoutError) return { text: `Error: ${e.message}.\n`, exitCode: 7, debugLines: [] };
  if (e instanceof ConnectionLostError) return { text: 'Error: The connection was lost.\n', exitCode: 7, debugLines: [] };
  return { text: `Error: ${e instanceof Error ? e.message : String(e)}\n`, exitCode: 1, debugLines: [] };
}

/** Writes to stderr unless --quiet. */
export function errPrint(c: CliConfig, text: string): void {
  if (!c.quiet) process.stderr.write(text);
}

/** `-d`: libmosquitto's log lines on stdout. */
export function attachDebug(client: MqttClient, c: CliConfig): void {
  if (!c.debug) return;
  client.on('packetsend', (p, mid) => {
    for (const line of describeSent(client.clientId, p, mid)) process.stdout.write(`${line}\n`);
  });
  client.on('packetreceive', (p) => {
    const id = p.type === 'connack' ? (p.properties?.assignedClientIdentifier ?? client.clientId) : client.clientId;
    for (const line of describeReceived(id, p)) process.stdout.write(`${line}\n`);
  });
}

/** DISCONNECT properties given with -D disconnect. */
export function disconnectOptions(c: CliConfig): EndOptions {
  return Object.keys(c.props.disconnect).length > 0 ? { properties: c.props.disconnect } : {};
}
