/**
 * MQTT 5.0 topic aliases (spec 3.3.2.3.4), one pair of maps per network connection. Pure.
 *
 * Outgoing: the client may give a topic a number up to the broker's Topic Alias Maximum (CONNACK);
 * the first PUBLISH carries topic and alias, later ones an empty topic and the alias. `auto` hands out
 * numbers in order and, once all are taken, reuses the least recently used one.
 * Incoming: the broker may do the same up to our Topic Alias Maximum (CONNECT).
 */
import type { PublishPacket } from '../codec/types.js';

export interface AliasChoice {
  alias: number;
  /** the broker already knows this alias for this topic: send an empty topic */
  known: boolean;
}

export class OutgoingAliases {
  /** topic -> alias, in least-recently-used-first order */
  private readonly byTopic = new Map<string, number>();
  /** alias -> topic */
  private readonly byAlias = new Map<number, string>();
  private highest = 0;
  private readonly free: number[] = [];

  /** `max` is the broker's Topic Alias Maximum (0 = aliases not allowed). */
  constructor(readonly max: number) {}

  /** An alias for `topic`, assigning (or reassigning the least recently used) one; undefined when max is 0. */
  auto(topic: string): AliasChoice | undefined {
    const alias = this.byTopic.get(topic);
    if (alias !== undefined) {
      this.touch(topic, alias);
      return { alias, known: true };
    }
    if (this.max === 0) return undefined;
    let next = this.free.pop() ?? (this.highest < this.max ? ++this.highest : undefined);
    if (next === undefined) {
      const [oldest, reused] = this.byTopic.entries().next().value as [string, number];
      this.byTopic.delete(oldest);
      next = reused;
    }
    this.assign(topic, next);
    return { alias: next, known: false };
  }

  /**
   * The caller's own alias number for `topic`; undefined when it is out of the broker's range [MQTT-3.3.2-8].
   * (Mixing own numbers with `auto` on one connection lets them take each other's numbers.)
   */
  explicit(topic: string, alias: number): AliasChoice | undefined {
    if (!Number.isInteger(alias) || alias < 1 || alias > this.max) return undefined;
    if (this.byAlias.get(alias) === topic) {
      this.touch(topic, alias);
      return { alias, known: true };
    }
    const previous = this.byAlias.get(alias);
    if (previous !== undefined) this.byTopic.delete(previous);
    const old = this.byTopic.get(topic);
    if (old !== undefined) this.byAlias.delete(old);
    this.assign(topic, alias);
    return { alias, known: false };
  }

  /** Undoes the assignment of a fresh alias whose PUBLISH could not be sent. */
  forget(topic: string): void {
    const alias = this.byTopic.get(topic);
    if (alias === undefined) return;
    this.byTopic.delete(topic);
    this.byAlias.delete(alias);
    this.free.push(alias);
  }

  private assign(topic: string, alias: number): void {
    this.byTopic.set(topic, alias);
    this.byAlias.set(alias, topic);
  }

  private touch(topic: string, alias: number): void {
    this.byTopic.delete(topic);
    this.byTopic.set(topic, alias);
  }
}

/**
 * `packet` with a topic alias per `mode` (an empty topic when the broker already knows it); `fresh`
 * says a new alias was assigned (to forget() if the packet is not sent after all).
 */
export function withAlias(aliases: OutgoingAliases, packet: PublishPacket, mode: 'auto' | number): { packet: PublishPacket; fresh: boolean } {
  const choice = mode === 'auto' ? aliases.auto(packet.topic) : aliases.explicit(packet.topic, mode);
  if (!choice) return { packet, fresh: false };
  return {
    packet: { ...packet, topic: choice.known ? '' : packet.topic, properties: { ...packet.properties, topicAlias: choice.alias } },
    fresh: !choice.known,
  };
}

/** What an incoming alias resolves to, or the reason code to disconnect with. */
export type AliasResolution = { topic: string } | { reasonCode: 0x82 | 0x94; reason: string };

export class IncomingAliases {
  private readonly byAlias = new Map<number, string>();

  /** `max` is the Topic Alias Maximum we sent in CONNECT (0 = none allowed). */
  constructor(readonly max: number) {}

  resolve(topic: string, alias: number | undefined): AliasResolution {
    if (alias === undefined) {
      // a zero-length Topic Name without a Topic Alias is a Protocol Error (3.3.2.1)
      return topic === '' ? { reasonCode: 0x82, reason: 'PUBLISH with an empty topic and no topic alias' } : { topic };
    }
    // [MQTT-3.3.2-10] the broker must stay within our maximum; 0 is never a valid alias
    if (alias === 0 || alias > this.max) return { reasonCode: 0x94, reason: `topic alias ${alias} out of range (maximum ${this.max})` };
    if (topic !== '') {
      this.byAlias.set(alias, topic);
      return { topic };
    }
    const known = this.byAlias.get(alias);
    return known === undefined ? { reasonCode: 0x82, reason: `unknown topic alias ${alias}` } : { topic: known };
  }
}
