/**
 * A tree of values keyed by topic NAME, searched by topic FILTER: the retained-message index
 * (a SUBSCRIBE asks "which retained topics match this filter?").
 *
 * One node per topic level. A literal filter level follows one child; `+` follows every child; `#`
 * takes the node itself (its parent level, `a/#` matches `a`) and everything below it. At the first
 * level, `+` and `#` skip topics starting with `$` [MQTT-4.7.2-1], so `#` does not return `$SYS/...`
 * while `$SYS/#` does.
 */
import { LevelCache } from './split.js';

const DOLLAR = 0x24; // '$'

class Node<V> {
  children: Map<string, Node<V>> | undefined = undefined;
  has = false;
  value: V | undefined = undefined;
  /** The topic name of this node; set when it holds a value. */
  topic = '';

  constructor(readonly parent: Node<V> | undefined, readonly level: string) {}
}

export class TopicTree<V> {
  private readonly root = new Node<V>(undefined, '');
  private readonly levels = new LevelCache();
  private count = 0;

  /** The number of stored topics. */
  get size(): number {
    return this.count;
  }

  /**
   * Stores `value` under `topic` (a valid topic name; not checked here), replacing any previous one,
   * which is returned.
   */
  set(topic: string, value: V): V | undefined {
    let node = this.root;
    for (const level of this.levels.split(topic)) {
      let next = node.children?.get(level);
      if (next === undefined) {
        next = new Node<V>(node, level);
        (node.children ??= new Map()).set(level, next);
      }
      node = next;
    }
    const old = node.value;
    if (!node.has) {
      node.has = true;
      node.topic = topic;
      this.count++;
    }
    node.value = value;
    return old;
  }

  get(topic: string): V | undefined {
    return this.find(topic)?.value;
  }

  has(topic: string): boolean {
    return this.find(topic)?.has ?? false;
  }

  /** Removes `topic`; returns false if it was not stored. Empty nodes are removed. */
  delete(topic: string): boolean {
    const node = this.find(topic);
    if (node === undefined || !node.has) return false;
    node.has = false;
    node.value = undefined;
    node.topic = '';
    this.count--;
    let n = node;
    while (n.parent !== undefined && !n.has && (n.children === undefined || n.children.size === 0)) {
      n.parent.children!.delete(n.level);
      n = n.parent;
    }
    return true;
  }

  clear(): void {
    this.root.children = undefined;
    this.count = 0;
  }

  /**
   * Calls `visit` for every stored topic that matches `filter` (a valid topic filter; not checked here).
   * The order of the calls is not specified. `visit` must not change the tree.
   */
  match(filter: string, visit: (topic: string, value: V) => void): void {
    this.walk(this.root, this.levels.split(filter), 0, visit);
  }

  /**
   * The stored topics matching `filter`, one at a time: a cursor over the tree, not a copy of it.
   * The tree may change between steps: a topic added later may or may not be visited, a topic
   * deleted before it is reached is skipped, and each value is read when its step is taken.
   */
  *cursor(filter: string): Generator<[topic: string, value: V], void, undefined> {
    yield* this.walkLazy(this.root, this.levels.split(filter).slice(), 0);
  }

  private *walkLazy(node: Node<V>, levels: readonly string[], i: number): Generator<[string, V], void, undefined> {
    for (;;) {
      if (i === levels.length) {
        if (node.has) yield [node.topic, node.value as V];
        return;
      }
      const level = levels[i]!;
      if (level === '#') {
        if (node.has) yield [node.topic, node.value as V]; // the parent level: `a/#` matches `a`
        if (node.children !== undefined) {
          for (const child of node.children.values()) {
            if (i === 0 && child.level.charCodeAt(0) === DOLLAR) continue; // [MQTT-4.7.2-1]
            yield* everythingLazy(child);
          }
        }
        return;
      }
      if (level === '+') {
        if (node.children !== undefined) {
          for (const child of node.children.values()) {
            if (i === 0 && child.level.charCodeAt(0) === DOLLAR) continue; // [MQTT-4.7.2-1]
            yield* this.walkLazy(child, levels, i + 1);
          }
        }
        return;
      }
      const next = node.children?.get(level);
      if (next === undefined) return;
      node = next;
      i++;
    }
  }

  private walk(node: Node<V>, levels: readonly string[], i: number, visit: (topic: string, value: V) => void): void {
    for (;;) {
      if (i === levels.length) {
        if (node.has) visit(node.topic, node.value as V);
        return;
      }
      const level = levels[i]!;
      if (level === '#') {
        if (node.has) visit(node.topic, node.value as V); // the parent level: `a/#` matches `a`
        if (node.children !== undefined) {
          for (const child of node.children.values()) {
            if (i === 0 && child.level.charCodeAt(0) === DOLLAR) continue; // [MQTT-4.7.2-1]
            everything(child, visit);
          }
        }
        return;
      }
      if (level === '+') {
        if (node.children !== undefined) {
          for (const child of node.children.values()) {
            if (i === 0 && child.level.charCodeAt(0) === DOLLAR) continue; // [MQTT-4.7.2-1]
            this.walk(child, levels, i + 1, visit);
          }
        }
        return;
      }
      const next = node.children?.get(level);
      if (next === undefined) return;
      node = next;
      i++;
    }
  }

  private find(topic: string): Node<V> | undefined {
    let node: Node<V> | undefined = this.root;
    for (const level of this.levels.split(topic)) {
      node = node.children?.get(level);
      if (node === undefined) return undefined;
    }
    return node;
  }
}

/** Visits a node and all its descendants. */
function everything<V>(node: Node<V>, visit: (topic: string, value: V) => void): void {
  if (node.has) visit(node.topic, node.value as V);
  if (node.children !== undefined) {
    for (const child of node.children.values()) everything(child, visit);
  }
}

/** A node and all its descendants, one at a time (each value read when it is reached). */
function* everythingLazy<V>(node: Node<V>): Generator<[string, V], void, undefined> {
  if (node.has) yield [node.topic, node.value as V];
  if (node.children !== undefined) {
    for (const child of node.children.values()) yield* everythingLazy(child);
  }
}
