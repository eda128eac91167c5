/**
 * MQTT 5.0 enhanced authentication on the client side (spec 4.12), pure: which AUTH packets to send
 * and what an AUTH from the broker means. The challenge itself is answered by the application's
 * `onChallenge` in the I/O shell, which hands the answer back with a token so that an answer that
 * comes after its connection is gone is dropped.
 */
import type { AuthPacket, Properties } from '../codec/types.js';
import { AuthenticationError } from './errors.js';

/** What an AUTH from the broker asks for. */
export type AuthOutcome =
  | { kind: 'challenge'; token: number; data: Buffer | undefined; reauth: boolean }
  | { kind: 'reauthenticated'; op: number; data: Buffer | undefined }
  | { kind: 'protocol-error'; reason: string };

export class AuthFlow {
  /** changes with every connection and every completed exchange */
  token = 0;
  /** the pending `reauthenticate()` */
  reauthOp: number | undefined;

  constructor(readonly method: string | undefined, private readonly data: Buffer | undefined) {}

  /** CONNECT properties with the authentication method and data added. */
  connectProperties(props: Properties): Properties {
    if (this.method === undefined) return props;
    const p: Properties = { ...props, authenticationMethod: this.method };
    if (this.data !== undefined) p.authenticationData = this.data;
    return p;
  }

  /** A connection starts or ends, or CONNACK ended the exchange: later answers are stale. */
  reset(): number | undefined {
    this.token++;
    const op = this.reauthOp;
    this.reauthOp = undefined;
    return op;
  }

  /** AUTH 0x19 for `reauthenticate(data)`, or the error to reject with. */
  start(op: number, data: Buffer | undefined): AuthPacket | AuthenticationError {
    if (this.method === undefined) return new AuthenticationError('re-authentication needs MQTT 5.0 and the auth option');
    if (this.reauthOp !== undefined) return new AuthenticationError('a re-authentication is already in progress');
    this.reauthOp = op;
    return this.packet(0x19, data);
  }

  /** AUTH 0x18 with the application's answer, or undefined when the token is stale. */
  answer(token: number, data: Buffer | undefined): AuthPacket | undefined {
    return token === this.token && this.method !== undefined ? this.packet(0x18, data) : undefined;
  }

  /** What an AUTH from the broker means (`connected`: after CONNACK). */
  received(p: AuthPacket, connected: boolean): AuthOutcome {
    const theirs = p.properties?.authenticationMethod;
    // [MQTT-4.12.0-7] AUTH to a client that sent no method, or with another method, is a protocol error
    if (this.method === undefined || theirs !== this.method) {
      return { kind: 'protocol-error', reason: `AUTH with method ${String(theirs)} (ours: ${String(this.method)})` };
    }
    const data = p.properties?.authenticationData;
    if (p.reasonCode === 0x18) {
      if (connected && this.reauthOp === undefined) return { kind: 'protocol-error', reason: 'AUTH continue without a re-authentication' };
      return { kind: 'challenge', token: this.token, data, reauth: connected };
    }
    if (p.reasonCode === 0x00 && connected && this.reauthOp !== undefined) {
      const op = this.reauthOp;
      this.reauthOp = undefined;
      this.token++;
      return { kind: 'reauthenticated', op, data };
    }
    return { kind: 'protocol-error', reason: `unexpected AUTH reason code 0x${p.reasonCode.toString(16)}` };
  }

  private packet(reasonCode: number, data: Buffer | undefined): AuthPacket {
    const properties: Properties = { authenticationMethod: this.method! };
    if (data !== undefined) properties.authenticationData = data;
    return { type: 'auth', reasonCode, properties };
  }
}

/** Runs the application's `onChallenge`; resolves with its answer, rejects with AuthenticationError. */
export async function answerChallenge(
  handler: ((data: Buffer | undefined, reauth: boolean) => Buffer | string | undefined | Promise<Buffer | string | undefined>) | undefined,
  data: Buffer | undefined, reauth: boolean,
): Promise<Buffer | undefined> {
  try {
    if (!handler) throw new Error('the broker sent a challenge and auth.onChallenge is not set');
    const answer = await handler(data, reauth);
    return typeof answer === 'string' ? Buffer.from(answer, 'utf8') : answer;
  } catch (err) {
    throw new AuthenticationError(`authentication challenge failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
