/**
 * Typed errors of the client library. Every promise the client returns rejects with one of these
 * (or with a codec `MqttError` when the broker sent bytes we cannot parse), never with a bare Error.
 */
import type { ProtocolVersion } from '../codec/types.js';

/** Base class: `err instanceof ClientError` catches everything the client library throws. */
export class ClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** CONNACK with a non-zero return code (3.x) or reason code (5.0). `text` is mosquitto's wording. */
export class ConnectionRefusedError extends ClientError {
  constructor(readonly returnCode: number, readonly protocolVersion: ProtocolVersion, readonly text: string) {
    super(text);
  }
}

/** No CONNACK in time, no PINGRESP in time, or `end()` could not drain in time. */
export class TimeoutError extends ClientError {}

/** The operation was started on (or still pending at) a client that `end()` closed. */
export class ClientClosedError extends ClientError {
  constructor(message = 'client is closed') { super(message); }
}

/**
 * The network connection was lost (socket closed, server DISCONNECT, protocol error) while the
 * operation was pending and the client was not going to reconnect. `reasonCode` is the server's
 * DISCONNECT reason code (5.0) when it sent one.
 */
export class ConnectionLostError extends ClientError {
  constructor(message: string, readonly reasonCode?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * Opening the transport failed: TCP refused or unreachable, DNS lookup, TLS handshake or certificate
 * check. `code` is Node's error code (`ECONNREFUSED`, `ENOTFOUND`, `ERR_TLS_CERT_ALTNAME_INVALID`...).
 */
export class TransportError extends ClientError {
  constructor(message: string, readonly code: string | undefined, readonly tls: boolean, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** SUBACK refused at least one filter. `reasonCodes` has one entry per filter (granted QoS or >= 0x80). */
export class SubscribeError extends ClientError {
  constructor(readonly reasonCodes: number[], readonly topics: string[]) {
    super(`subscription refused: ${topics.map((t, i) => `${t} (0x${(reasonCodes[i] ?? 0x80).toString(16)})`).join(', ')}`);
  }
}

/** 5.0 PUBACK / PUBREC with a reason code >= 0x80: the broker did not accept the message. */
export class PublishError extends ClientError {
  constructor(readonly reasonCode: number, readonly packetId: number, readonly reasonString?: string) {
    super(`publish ${packetId} refused with reason code 0x${reasonCode.toString(16)}${reasonString ? `: ${reasonString}` : ''}`);
  }
}

/** The bounded offline/outgoing publish queue is full. */
export class QueueFullError extends ClientError {
  constructor(readonly limit: number) { super(`outgoing queue is full (${limit} messages)`); }
}

/** A bad argument to a client call (invalid topic, QoS, option). Rejected, not thrown. */
export class InvalidArgumentError extends ClientError {}
