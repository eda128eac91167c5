import type { Will } from '../codec/types.js';
import type { Broker } from './broker.js';
import { mayPublish } from './checks.js';
import { HookError } from './handlers/errors.js';
import type { ClientInfo, Message } from './types.js';
import type { ClockTimer } from '../util/clock.js';

/** setTimeout's longest delay (2^31 - 1 ms), in whole seconds */
const MAX_TIMER_S = 2_147_483;

/** Who a will belongs to, as its ACL check and log lines see it (a connection, or a will restored from the store). */
export type WillOwner = ClientInfo & { readonly logId: string; readonly who: string };

/**
 * @internal Wills: published at once, or after their will delay (v5) unless the client comes back in
 * time [MQTT-3.1.3-9]; a delayed will of a durable session is recorded for the store, so that it
 * survives a restart. A will is checked like the PUBLISH it becomes ($SYS, then the ACL hook).
 */
export class Wills {
  private readonly delayed = new Map<string, { will: Will; owner: WillOwner; timer: ClockTimer }>();

  constructor(private readonly broker: Broker) {}

  /** Publish `will` after `waitMs` (recorded when `record`: its session is durable). */
  delay(clientId: string, will: Will, owner: WillOwner, waitMs: number, fireAt: number, record: boolean): void {
    const b = this.broker;
    const timer = b.clock.setTimeout(() => {
      this.delayed.delete(clientId);
      b.recorder?.add({ op: 'willDone', clientId });
      this.publish(will, owner);
    }, Math.min(waitMs, MAX_TIMER_S * 1000));
    this.delayed.set(clientId, { will, owner, timer });
    if (record && b.recorder !== undefined) {
      b.recorder.add({ op: 'will', will: {
        clientId, will: { ...will, payload: Buffer.from(will.payload) }, fireAt,
        ...(owner.username !== undefined ? { username: owner.username } : {}),
        ...(owner.listenerPort !== undefined ? { listenerPort: owner.listenerPort } : {}),
      } });
    }
  }

  /** The client is back before its will delay ran out: no will [MQTT-3.1.3-9]. */
  cancel(clientId: string): void {
    const d = this.delayed.get(clientId);
    if (d === undefined) return;
    this.broker.clock.clearTimeout(d.timer);
    this.delayed.delete(clientId);
    this.broker.recorder?.add({ op: 'willDone', clientId });
  }

  /** The session ends before the will delay: its will goes out now. */
  fireNow(clientId: string): void {
    const d = this.delayed.get(clientId);
    if (d === undefined) return;
    this.cancel(clientId);
    this.publish(d.will, d.owner);
  }

  /** Stop every will delay (the broker closes; durable ones stay in the store). */
  clear(): void {
    for (const d of this.delayed.values()) this.broker.clock.clearTimeout(d.timer);
    this.delayed.clear();
  }

  /** Publish a will. Runs from socket events and timers, so nothing may escape it. */
  publish(will: Will, owner: WillOwner): void {
    try {
      this.publishUnsafe(will, owner);
    } catch (err) {
      this.broker.log.error(`publishing the will of ${owner.logId} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private publishUnsafe(will: Will, owner: WillOwner): void {
    const b = this.broker;
    const msg: Message = { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain && b.opts.retainAvailable, origin: owner.id };
    const props = will.properties;
    if (props !== undefined) {
      const { willDelayInterval: _d, messageExpiryInterval, ...rest } = props;
      if (Object.keys(rest).length > 0) msg.properties = rest;
      if (messageExpiryInterval !== undefined) {
        msg.properties = { ...rest, messageExpiryInterval };
        msg.expiresAt = b.clock.now() + messageExpiryInterval * 1000;
      }
    }
    // the PUBLISH path's check ($SYS, then the ACL hook), asked when the will goes out, as mosquitto 2.0.11
    // does: it accepts the CONNECT of a will it will not publish (checked against it: CONNACK 0 for a will
    // to '$SYS/broker/version' and for one its acl_file denies; neither will is published)
    const denied = (): void => b.log.info(`Denied will of ${owner.logId} to '${msg.topic}'.`);
    const failed = (err: unknown): void => {
      const cause = err instanceof HookError ? err.failure : err;
      b.log.error(`Client ${owner.who}: the authorizePublish hook failed for its will to '${msg.topic}': ${cause instanceof Error ? cause.message : String(cause)}`);
    };
    let allowed: boolean | Promise<boolean>;
    try {
      allowed = mayPublish(b, owner, msg);
    } catch (err) {
      failed(err);
      return;
    }
    if (allowed === true) b.publishMessage(msg, owner);
    else if (allowed === false) denied();
    else allowed.then((ok) => { if (ok) b.publishMessage(msg, owner); else denied(); }, failed);
  }
}
