import { isValidTopicName } from '../topic/index.js';
import type { Broker } from './broker.js';
import { HookError } from './handlers/errors.js';
import type { ClientInfo, Message } from './types.js';

/**
 * The checks every message a client originates goes through, a PUBLISH and a will alike, so that the two
 * paths cannot drift apart. What each caller answers differs (the spec's rules for PUBLISH and CONNECT):
 * checkMessage is about the message itself, mayPublish about who may send it where.
 */

/** 0 = fine; 0x90 = not a valid topic name (empty, wildcards, bad UTF-8); 0x95 = payload over message_size_limit. */
export function checkMessage(broker: Broker, topic: string, payloadLength: number): 0 | 0x90 | 0x95 {
  if (!isValidTopicName(topic)) return 0x90;
  const limit = broker.opts.messageSizeLimit;
  if (limit > 0 && payloadLength > limit) return 0x95;
  return 0;
}

/** mosquitto lets no client write to $SYS, but a bridge's connection state topic, before any ACL or plugin. */
export function isSysDenied(topic: string): boolean {
  return topic.startsWith('$SYS') && !/^\$SYS\/broker\/connection\/[^/]+\/state$/.test(topic);
}

/**
 * May `client` publish `msg`: $SYS first (denied), then the authorizePublish hook. A hook that throws or
 * rejects becomes a HookError naming it. Synchronous when the hook is.
 */
export function mayPublish(broker: Broker, client: ClientInfo, msg: Message): boolean | Promise<boolean> {
  if (isSysDenied(msg.topic)) return false;
  const authz = broker.hooks.authorizePublish;
  if (authz === undefined) return true;
  let r: boolean | Promise<boolean>;
  try {
    r = authz(client, msg.topic, msg);
  } catch (err) {
    throw new HookError('authorizePublish', err);
  }
  if (typeof r === 'boolean') return r;
  return Promise.resolve(r).then((ok) => Boolean(ok), (err: unknown) => { throw new HookError('authorizePublish', err); });
}
