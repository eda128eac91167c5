/**
 * Packet identifiers for outgoing PUBLISH (QoS > 0), SUBSCRIBE and UNSUBSCRIBE.
 * An id stays taken from `alloc()` until `release()`: an id is never reused while its flow is in flight
 * [MQTT-2.2.1-3]. Ids rotate through 1..65535 so a just-released id is not handed out again at once.
 */
export const MAX_PACKET_ID = 65535;

export class PacketIdAllocator {
  private readonly used = new Uint8Array(MAX_PACKET_ID + 1);
  private cursor = 0;
  private count = 0;

  /** How many ids are taken. */
  get inUse(): number { return this.count; }

  has(id: number): boolean { return this.used[id] === 1; }

  /** Takes the next free id, or undefined when all 65535 are in flight. */
  alloc(): number | undefined {
    if (this.count >= MAX_PACKET_ID) return undefined;
    const id = this.advance();
    this.used[id] = 1;
    this.count++;
    return id;
  }

  /**
   * A message id for a QoS 0 publish (never on the wire; reported to the caller like libmosquitto's mid).
   * Advances the rotation like `alloc()` but takes nothing.
   */
  peek(): number {
    return this.count >= MAX_PACKET_ID ? (this.cursor % MAX_PACKET_ID) + 1 : this.advance();
  }

  release(id: number): void {
    if (id < 1 || id > MAX_PACKET_ID || this.used[id] === 0) return;
    this.used[id] = 0;
    this.count--;
  }

  /** Marks `id` as taken (restoring a flow); false if it already was. */
  claim(id: number): boolean {
    if (id < 1 || id > MAX_PACKET_ID || this.used[id] === 1) return false;
    this.used[id] = 1;
    this.count++;
    return true;
  }

  private advance(): number {
    do {
      this.cursor = (this.cursor % MAX_PACKET_ID) + 1;
    } while (this.used[this.cursor] === 1);
    return this.cursor;
  }
}
