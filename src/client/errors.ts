/**
 * Typed errors of the client library. Every promise the client returns rejects with one of these
 * (or with a codec `MqttError` when the broker sent bytes we cannot parse), never with a bare Error.
 * MQTT 5.0 reason codes, reason strings and the other properties of the packet that carried the
 * failure are kept on the error.
 */
import type { Properties, ProtocolVersion } from '../codec/types.js';

/** Base class: `err instanceof ClientError` catches everything the client library throws. */
export class ClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * CONNACK with a non-zero return code (3.x) or reason code (5.0). `text` is mosquitto's wording;
 * `reasonString` and `properties` are the 5.0 CONNACK's.
 */
export class ConnectionRefusedError extends ClientError {
  readonly reasonString: string | undefined;
  constructor(readonly returnCode: number, readonly protocolVersion: ProtocolVersion, readonly text: string,
    readonly properties?: Properties) {
    super(properties?.reasonString ? `${text}: ${properties.reasonString}` : text);
    this.reasonString = properties?.reasonString;
  }

  /** the 5.0 reason code (same as `returnCode`) */
  get reasonCode(): number { return this.returnCode; }
}

/**
 * 5.0 server redirection: CONNACK 0x9C (use another server) or 0x9D (server moved) with the
 * Server Reference the broker gave (spec 4.11). `moved` is true for 0x9D (permanent).
 */
export class ServerRedirectError extends ConnectionRefusedError {
  readonly serverReference: string | undefined;
  readonly moved: boolean;
  constructor(returnCode: number, text: string, properties?: Properties) {
    super(returnCode, 5, text, properties);
    this.serverReference = properties?.serverReference;
    this.moved = returnCode === 0x9d;
  }
}

/** No CONNACK in time, no PINGRESP in time, or `end()` could not drain in time. */
export class TimeoutError extends ClientError {}

/** The operation was started on (or still pending at) a client that `end()` closed. */
export class ClientClosedError extends ClientError {
  constructor(message = 'client is closed') { super(message); }
}

export interface ConnectionLostDetails {
  cause?: unknown;
  /** the DISCONNECT's properties (5.0): reasonString, serverReference, userProperties, sessionExpiryInterval */
  properties?: Properties;
}

/**
 * The network connection was lost (socket closed, server DISCONNECT, protocol error) while the
 * operation was pending and the client was not going to reconnect; also the `offline` event's error.
 * `reasonCode` is the server's DISCONNECT reason code (5.0) when it sent one, or the code the client
 * itself sent in its DISCONNECT for a protocol error of the server (0x82, 0x94, 0x95...).
 */
export class ConnectionLostError extends ClientError {
  readonly reasonString: string | undefined;
  readonly serverReference: string | undefined;
  readonly properties: Properties | undefined;
  constructor(message: string, readonly reasonCode?: number, details?: ConnectionLostDetails) {
    super(message, details?.cause !== undefined ? { cause: details.cause } : undefined);
    this.properties = details?.properties;
    this.reasonString = details?.properties?.reasonString;
    this.serverReference = details?.properties?.serverReference;
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

/**
 * SUBACK refused at least one filter, or the broker said in CONNACK that it does not support what the
 * subscription needs (0x9E shared, 0xA1 subscription identifiers, 0xA2 wildcards: refused before sending).
 * `reasonCodes` has one entry per filter (granted QoS or >= 0x80).
 */
export class SubscribeError extends ClientError {
  readonly reasonString: string | undefined;
  constructor(readonly reasonCodes: number[], readonly topics: string[], readonly properties?: Properties) {
    super(`subscription refused: ${topics.map((t, i) => `${t} (0x${(reasonCodes[i] ?? 0x80).toString(16)})`).join(', ')}`
      + (properties?.reasonString ? `: ${properties.reasonString}` : ''));
    this.reasonString = properties?.reasonString;
  }
}

/** 5.0 UNSUBACK with a reason code >= 0x80 for at least one filter. */
export class UnsubscribeError extends ClientError {
  readonly reasonString: string | undefined;
  constructor(readonly reasonCodes: number[], readonly topics: string[], readonly properties?: Properties) {
    super(`unsubscribe refused: ${topics.map((t, i) => `${t} (0x${(reasonCodes[i] ?? 0x80).toString(16)})`).join(', ')}`
      + (properties?.reasonString ? `: ${properties.reasonString}` : ''));
    this.reasonString = properties?.reasonString;
  }
}

/**
 * 5.0 PUBACK / PUBREC with a reason code >= 0x80: the broker did not accept the message. Also raised
 * before sending when the broker's CONNACK rules the message out: 0x9A retain not available,
 * 0x9B QoS above the broker's Maximum QoS (`packetId` is 0 then).
 */
export class PublishError extends ClientError {
  constructor(readonly reasonCode: number, readonly packetId: number, readonly reasonString?: string, readonly properties?: Properties) {
    super(`publish ${packetId} refused with reason code 0x${reasonCode.toString(16)}${reasonString ? `: ${reasonString}` : ''}`);
  }
}

/**
 * The packet would be larger than the broker's Maximum Packet Size (5.0 CONNACK): it was not sent
 * [MQTT-3.1.2-24]. The connection stays up. `reasonCode` is 0x95 (Packet too large).
 */
export class MaximumPacketSizeError extends ClientError {
  readonly reasonCode = 0x95;
  constructor(readonly size: number, readonly limit: number, readonly packetType: string) {
    super(`${packetType.toUpperCase()} of ${size} bytes exceeds the broker's maximum packet size of ${limit} bytes`);
  }
}

/** Enhanced authentication (5.0 AUTH) failed on the client's side: the challenge handler threw, or the broker broke the exchange. */
export class AuthenticationError extends ClientError {}

/** The bounded offline/outgoing publish queue is full. */
export class QueueFullError extends ClientError {
  constructor(readonly limit: number) { super(`outgoing queue is full (${limit} messages)`); }
}

/** A bad argument to a client call (invalid topic, QoS, option). Rejected, not thrown. */
export class InvalidArgumentError extends ClientError {}
