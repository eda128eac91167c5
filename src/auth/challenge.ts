import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuthExchange, AuthStep, ClientInfo } from '../broker/types.js';

/**
 * A simple MQTT 5 enhanced-authentication method, shipped as the example of the `authMethods` hook:
 * `MIDGE-CHALLENGE`. The client sends its user name as authentication data in CONNECT; the broker
 * answers AUTH 0x18 with a 32-byte random challenge; the client answers AUTH 0x18 with
 * HMAC-SHA256(secret, challenge); the broker accepts if it matches. The secret never crosses the wire.
 */
export const CHALLENGE_METHOD = 'MIDGE-CHALLENGE';

export function challengeAuth(secretFor: (username: string) => string | Buffer | undefined | Promise<string | Buffer | undefined>):
  (client: ClientInfo) => AuthExchange {
  return () => {
    let username: string | undefined;
    let challenge: Buffer | undefined;
    return {
      async step(data: Buffer | undefined): Promise<AuthStep> {
        if (challenge === undefined) {
          if (data === undefined || data.length === 0) return { failure: true, reasonCode: 0x86 };
          username = data.toString('utf8');
          challenge = randomBytes(32);
          return { continue: challenge };
        }
        const secret = await secretFor(username!);
        if (secret === undefined || data === undefined) return { failure: true, reasonCode: 0x86 };
        const expected = challengeResponse(secret, challenge);
        const ok = data.length === expected.length && timingSafeEqual(data, expected);
        return ok ? { success: true, username } : { failure: true, reasonCode: 0x86 };
      },
    };
  };
}

/** What a client answers to a challenge. */
export function challengeResponse(secret: string | Buffer, challenge: Buffer): Buffer {
  return createHmac('sha256', secret).update(challenge).digest();
}
