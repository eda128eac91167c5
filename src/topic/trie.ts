/**
 * The subscription index: topic filter → (key → value), searched by topic name.
 *
 * One node per filter level. Literal levels are in a Map; `+` and `#` have their own slots, so a
 * PUBLISH visits only the nodes on paths that can match: at each level the exact child, the `+` child
 * and the `#` child. The cost of `match` depends on the topic's depth and the number of matches, never
 * on the number of subscriptions.
 *
 * The entries of a node are kept in two parallel arrays (with a key → index map for set/get/delete), so
 * that `match` can hand them out with a plain loop: no iterator or entry arrays are allocated per match.
 */
import { LevelCache } from './split.js';

const DOLLAR = 0x24; // '$'

class Node<V> {
  children: Map<string, Node<V>> | undefined = undefined;
  plus: Node<V> | undefined = undefined;
  hash: Node<V> | undefined = undefined;
  /** Subscriptions whose filter ends at this node. */
  keys: string[] | undefined = undefined;
  values: V[] | undefined = undefined;
  index: Map<string, number> | undefined = undefined;
  /** The whole filter that leads here; set when the node first gets an entry. */
  filter = '';

  constructor(readonly parent: Node<V> | undefined, readonly level: string) {}

  isEmpty(): boolean {
    return (this.keys === undefined || this.keys.length === 0)
      && (this.children === undefined || this.children.size === 0)
      && this.plus === undefined && this.hash === undefined;
  }

  child(level: string): Node<V> | undefined {
    if (level === '+') return this.plus;
    if (level === '#') return this.hash;
    return this.children?.get(level);
  }

  childOrNew(level: string): Node<V> {
    let n = this.child(level);
    if (n !== undefined) return n;
    n = new Node<V>(this, level);
    if (level === '+') this.plus = n;
    else if (level === '#') this.hash = n;
    else (this.children ??= new Map()).set(level, n);
    return n;
  }

  removeChild(level: string): void {
    if (level === '+') this.plus = undefined;
    else if (level === '#') this.hash = undefined;
    else this.children?.delete(level);
  }
}

export class SubscriptionTrie<V> {
  private readonly root = new Node<V>(undefined, '');
  private readonly levels = new LevelCache();
  private count = 0;

  /** The number of (filter, key) entries. */
  get size(): number {
    return this.count;
  }

  /**
   * Adds or replaces the value of `key` under `filter` (a valid topic filter: see `isValidTopicFilter`;
   * this is not checked here). Returns true if the (filter, key) entry is new, false if it replaced one.
   */
  set(filter: string, key: string, value: V): boolean {
    let node = this.root;
    for (const level of filter.split('/')) node = node.childOrNew(level);
    if (node.index === undefined) {
      node.index = new Map();
      node.keys = [];
      node.values = [];
      node.filter = filter;
    }
    const i = node.index.get(key);
    if (i !== undefined) {
      node.values![i] = value;
      return false;
    }
    node.index.set(key, node.keys!.length);
    node.keys!.push(key);
    node.values!.push(value);
    this.count++;
    return true;
  }

  get(filter: string, key: string): V | undefined {
    const node = this.find(filter);
    const i = node?.index?.get(key);
    return i === undefined ? undefined : node!.values![i];
  }

  /** Removes one entry; nodes left with no entries and no children are removed too. */
  delete(filter: string, key: string): boolean {
    const node = this.find(filter);
    const i = node?.index?.get(key);
    if (node === undefined || i === undefined) return false;
    const keys = node.keys!;
    const values = node.values!;
    const last = keys.length - 1;
    if (i !== last) {
      // Move the last entry into the hole: O(1), order within a node is not kept.
      keys[i] = keys[last]!;
      values[i] = values[last]!;
      node.index!.set(keys[i]!, i);
    }
    keys.pop();
    values.pop();
    node.index!.delete(key);
    this.count--;
    if (keys.length === 0) {
      node.index = node.keys = node.values = undefined;
    }
    this.prune(node);
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    const r = this.root;
    r.children = r.plus = r.hash = r.keys = r.values = r.index = undefined;
    this.count = 0;
  }

  /**
   * Calls `visit` once for every (filter, key) entry whose filter matches `topic` (a valid topic name).
   * `a/#` matches `a` [MQTT-4.7.1-2]; filters starting with `+` or `#` do not match topics starting with
   * `$` [MQTT-4.7.2-1]. The order of the calls is not specified. `visit` must not change the trie.
   */
  match(topic: string, visit: (value: V, key: string, filter: string) => void): void {
    const levels = this.levels.split(topic);
    const root = this.root;
    if (topic.charCodeAt(0) === DOLLAR) {
      // [MQTT-4.7.2-1]: only literal first levels can match a $ topic.
      const child = root.children?.get(levels[0]!);
      if (child !== undefined) this.walk(child, levels, 1, visit);
    } else {
      this.walk(root, levels, 0, visit);
    }
  }

  private walk(node: Node<V>, levels: readonly string[], i: number,
    visit: (value: V, key: string, filter: string) => void): void {
    for (;;) {
      const hash = node.hash;
      if (hash !== undefined) emit(hash, visit); // '#' matches the rest, and the parent level itself
      if (i === levels.length) {
        emit(node, visit);
        return;
      }
      if (node.plus !== undefined) this.walk(node.plus, levels, i + 1, visit);
      const next = node.children?.get(levels[i]!);
      if (next === undefined) return;
      node = next; // the exact child: loop instead of recursing
      i++;
    }
  }

  private find(filter: string): Node<V> | undefined {
    let node: Node<V> | undefined = this.root;
    for (const level of filter.split('/')) {
      node = node.child(level);
      if (node === undefined) return undefined;
    }
    return node;
  }

  private prune(node: Node<V>): void {
    let n = node;
    while (n.parent !== undefined && n.isEmpty()) {
      n.parent.removeChild(n.level);
      n = n.parent;
    }
  }
}

function emit<V>(node: Node<V>, visit: (value: V, key: string, filter: string) => void): void {
  const keys = node.keys;
  if (keys === undefined) return;
  const values = node.values!;
  const filter = node.filter;
  for (let i = 0; i < keys.length; i++) visit(values[i]!, keys[i]!, filter);
}
