import type { Properties, ProtocolVersion, QoS, Will } from '../codec/types.js';

/** An application message as routed inside the broker. Immutable once published. */
export interface Message {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  /** v5 properties passed through to subscribers (never topicAlias / subscriptionIdentifiers) */
  properties?: Properties;
  /** client id of the publisher, for no-local; undefined for broker-made messages ($SYS, wills) */
  origin?: string;
  /** absolute ms time after which the message must not be delivered (v5 message expiry) */
  expiresAt?: number;
  /** @internal encoded PUBLISH of the first variant (version, qos, retain) asked for, shared by its subscribers */
  encodedKey?: number;
  /** @internal */
  encoded?: Buffer;
  /** @internal further variants, rarely more than one or two */
  encodedMore?: Map<number, Buffer>;
  /** @internal the payload no longer shares memory with a socket chunk (see ownPayload) */
  owned?: boolean;
  /** @internal id of the message in the durable store, once it has been recorded there */
  storeId?: number;
  /** @internal the commit batch that last recorded it (recorded once per batch) */
  storeBatch?: number;
}

/** The client as hooks and events see it. */
export interface ClientInfo {
  readonly id: string;
  readonly username?: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly protocolVersion: ProtocolVersion;
  /** TLS peer certificate subject / identity, when the listener asks for one */
  readonly certificate?: { subject?: string; cn?: string };
  /** port of the listener the client connected to (per-listener settings) */
  readonly listenerPort?: number;
  /**
   * Set when the listener takes the username from the client certificate (use_identity_as_username /
   * use_subject_as_username): the username the client is known by, already proven by TLS.
   */
  readonly certificateIdentity?: string;
}

/**
 * What the `authenticate` hook may answer besides true/false. When `ok` is false the client is refused with:
 * - `reasonCode`, an MQTT 5 CONNACK reason code (0x80..0x9F, e.g. 0x8C bad authentication method, 0x8A banned),
 *   sent as is to 5.0 clients and mapped to the nearest 3.1.1 return code for older ones (see `connackCode3`:
 *   0x84 → 1, 0x85 → 2, 0x86 → 4, 0x88 / 0x89 / 0x9C / 0x9D / 0x9F → 3, any other → 5); or
 * - `returnCode`, a 3.1.1 return code (1..5), mapped for 5.0 clients (1 → 0x84, 2 → 0x85, 3 → 0x88, 4 → 0x86, 5 → 0x87).
 * `reasonCode` wins when both are given. Default: 5 / 0x87 not authorised.
 * `reasonString` goes to 5.0 clients in the CONNACK's Reason String property (3.x has no place for it).
 */
export interface AuthResult {
  ok: boolean;
  /** 3.1.1 CONNACK return code when !ok (1..5) */
  returnCode?: number;
  /** MQTT 5 CONNACK reason code when !ok (0x80..0x9F) */
  reasonCode?: number;
  /** MQTT 5 reason string sent with the refusal */
  reasonString?: string;
}

export interface BrokerHooks {
  /** Called on every CONNECT. Resolve true (or {ok:true}) to accept. */
  authenticate?(client: ClientInfo, username: string | undefined, password: Buffer | undefined): Promise<boolean | AuthResult> | boolean | AuthResult;
  /** May `client` publish to `topic`? A denied PUBLISH is acknowledged but not delivered. */
  authorizePublish?(client: ClientInfo, topic: string, message: Message): Promise<boolean> | boolean;
  /** May `client` subscribe to `filter`? A denied subscription gets SUBACK 0x80 (5.0: 0x87). */
  authorizeSubscribe?(client: ClientInfo, filter: string, qos: QoS): Promise<boolean> | boolean;
  /** MQTT 5 enhanced authentication: authentication method name → a new exchange per attempt. */
  authMethods?: Record<string, (client: ClientInfo) => AuthExchange>;
  /** May `message` be delivered to `session` (ACL read check)? Synchronous: it is on the fan-out path. */
  authorizeRead?(session: SessionInfo, message: Message): boolean;
  /**
   * Called for every new connection before any byte of it is read (the CONNECT is not parsed yet), with
   * the peer's address and the listener's port. False (or a promise of false) closes the socket silently,
   * as a refused address; a throw or rejection is logged and closes it too. Packets that arrive while an
   * async answer is pending wait for it (the connect deadline applies).
   */
  preConnect?(info: ConnectionInfo): Promise<boolean> | boolean;
  /**
   * Called once per subscriber for each message about to be delivered (live and retained, shared subscriptions
   * included), after `authorizeRead`. Return the message unchanged (or undefined) to deliver it, a changed
   * one (`{ ...message, payload: 'x' }` or any `{ topic, payload, qos?, retain?, properties? }`) to deliver
   * that instead to this subscriber, or null to skip this subscriber. Synchronous: it is on the fan-out path.
   * A hook that throws skips that delivery (logged). Absent, it costs nothing.
   */
  authorizeForward?(session: SessionInfo, message: Readonly<Message>): Message | ForwardMessage | null | undefined;
}

/** The subscriber a delivery hook sees (a session, online or not). */
export interface SessionInfo {
  readonly clientId: string;
  readonly username?: string;
  readonly listenerPort?: number;
}

/** What `authorizeForward` may answer instead of the message: the same fields `broker.publish()` takes. */
export interface ForwardMessage {
  topic: string;
  payload: Buffer | Uint8Array | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
}

/** The peer of a new connection, as `preConnect` sees it (the transport's view; no CONNECT yet). */
export interface ConnectionInfo {
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly listenerPort?: number;
  readonly certificate?: { subject?: string; cn?: string };
  readonly certificateIdentity?: string;
}

/** One step of an MQTT 5 enhanced authentication exchange (AUTH packets). */
export type AuthStep =
  | { continue: Buffer }                          // send AUTH 0x18 with this data, wait for the client's answer
  | { success: true; data?: Buffer; username?: string } // CONNACK 0 (or AUTH 0 on re-authentication)
  | { failure: true; reasonCode?: number };       // CONNACK / DISCONNECT with this code (default 0x87)

/** An exchange for one connection; `step` gets the client's authentication data, first from CONNECT, then from each AUTH. */
export interface AuthExchange {
  step(data: Buffer | undefined): Promise<AuthStep> | AuthStep;
}

export type { Will };
