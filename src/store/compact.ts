import type { Change } from './store.js';

type Kind = 0 | 1 | 2; // in-flight, queue, incoming QoS 2

/**
 * Leaves out of a change set what it undoes itself (DESIGN.md: a change undone within the same
 * commit is never written): a message sent and acknowledged, queued and dequeued, an incoming QoS 2
 * id received and released; then the messages that nothing left in the set refers to (a message
 * that is stored already keeps its stored copy; a later reference records it again).
 *
 * Used by the Recorder on each turn's set, and by the SQLite store on the many turns that it folds
 * from its journal into its tables at once (src/store/sqlite.ts), where most pairs cancel.
 */
export function compact(changes: readonly Change[]): readonly Change[] {
  if (changes.length < 2) return changes;
  let dropped: Uint8Array | undefined;
  // per client, per kind: id -> indexes of the changes of the entry opened in this set
  const open = new Map<string, [Map<number, number[]> | undefined, Map<number, number[]> | undefined, Map<number, number[]> | undefined]>();
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    let kind: Kind;
    let id: number;
    let opens = false;
    switch (c.op) {
      case 'inflight': kind = 0; id = c.ref.packetId; opens = c.ref.state === 'publish'; break;
      case 'inflightDone': kind = 0; id = c.packetId; break;
      case 'enqueue': kind = 1; id = c.ref.seq; opens = true; break;
      case 'dequeue': kind = 1; id = c.seq; break;
      case 'qos2': kind = 2; id = c.packetId; opens = true; break;
      case 'qos2Done': kind = 2; id = c.packetId; break;
      case 'dropSession':
        // everything of the client before it is gone anyway; pairs do not span it
        open.delete(c.clientId);
        continue;
      default: continue;
    }
    let perClient = open.get(c.clientId);
    if (perClient === undefined) {
      if (!opens) continue;
      perClient = [undefined, undefined, undefined];
      open.set(c.clientId, perClient);
    }
    let byId = perClient[kind];
    if (opens) {
      (byId ??= perClient[kind] = new Map()).set(id, [i]);
      continue;
    }
    const list = byId?.get(id);
    if (list === undefined) continue;
    if (c.op === 'inflight') {
      list.push(i); // a state change (PUBREL sent) of an entry opened in this set
      continue;
    }
    // opened and finished in this set: none of it is written
    dropped ??= new Uint8Array(changes.length);
    for (const j of list) dropped[j] = 1;
    dropped[i] = 1;
    byId!.delete(id);
  }
  if (dropped === undefined) return changes;
  const referenced = new Set<number>();
  for (let i = 0; i < changes.length; i++) {
    if (dropped[i]) continue;
    const c = changes[i]!;
    if (c.op === 'enqueue' || c.op === 'inflight') referenced.add(c.ref.messageId);
    else if (c.op === 'retain') referenced.add(c.messageId);
  }
  const out: Change[] = [];
  for (let i = 0; i < changes.length; i++) {
    if (dropped[i]) continue;
    const c = changes[i]!;
    if (c.op === 'message' && !referenced.has(c.msg.id)) continue;
    out.push(c);
  }
  return out;
}
