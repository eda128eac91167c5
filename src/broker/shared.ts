import type { Session, SubEntry } from './session.js';

export type ShareStrategy = 'round_robin' | 'random' | 'hash';

/**
 * A shared subscription group `$share/GROUP/FILTER` (MQTT 5.0 §4.8.2, also offered to 3.1.1
 * clients as Mosquitto and EMQX do): each message goes to one member.
 * Stored in the topic trie under FILTER with key `$share/GROUP`.
 */
export class SharedGroup {
  readonly shared = true as const;
  readonly members: SubEntry[] = [];
  private next = 0;

  constructor(readonly group: string, readonly filter: string, private readonly strategy: ShareStrategy) {}

  add(entry: SubEntry): void {
    const i = this.members.findIndex((m) => m.session === entry.session);
    if (i >= 0) this.members[i] = entry;
    else this.members.push(entry);
  }

  remove(session: Session): boolean {
    const i = this.members.findIndex((m) => m.session === session);
    if (i < 0) return false;
    this.members.splice(i, 1);
    if (this.next > i) this.next--;
    return true;
  }

  /**
   * The member to deliver to: online members first (by the strategy); when none is online, a member
   * whose session keeps messages. `exclude`: a member that just lost its connection.
   */
  pick(origin: string | undefined, exclude?: Session): SubEntry | undefined {
    const n = this.members.length;
    if (n === 0) return undefined;
    const start = this.startIndex(origin, n);
    let fallback: SubEntry | undefined;
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      const m = this.members[i]!;
      if (m.session === exclude) continue;
      if (m.session.outlet !== null) {
        if (this.strategy === 'round_robin') this.next = (i + 1) % n;
        return m;
      }
      fallback ??= m;
    }
    if (fallback !== undefined && this.strategy === 'round_robin') this.next = (this.members.indexOf(fallback) + 1) % n;
    return fallback;
  }

  private startIndex(origin: string | undefined, n: number): number {
    switch (this.strategy) {
      case 'random': return Math.floor(Math.random() * n);
      case 'hash': return origin === undefined ? 0 : hash(origin) % n;
      default: return this.next % n;
    }
  }
}

/** FNV-1a: a stable member per publishing client for the 'hash' strategy */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
