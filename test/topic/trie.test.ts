import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SubscriptionTrie } from '../../src/topic/index.js';
import { MATCH_TABLE } from './tables.js';

function matches<V>(trie: SubscriptionTrie<V>, topic: string): string[] {
  const out: string[] = [];
  trie.match(topic, (value, key, filter) => out.push(`${filter} ${key}=${String(value)}`));
  return out.sort();
}

/** The number of nodes below the root: reaches into the private structure to check pruning. */
function nodeCount(trie: SubscriptionTrie<unknown>): number {
  type N = { children?: Map<string, N>; plus?: N; hash?: N };
  const count = (n: N): number => {
    let c = 0;
    for (const child of n.children?.values() ?? []) c += 1 + count(child);
    if (n.plus) c += 1 + count(n.plus);
    if (n.hash) c += 1 + count(n.hash);
    return c;
  };
  return count((trie as unknown as { root: N }).root);
}

describe('SubscriptionTrie', () => {
  for (const [filter, topic, expected] of MATCH_TABLE) {
    test(`a subscription to "${filter}" ${expected ? 'receives' : 'does not receive'} "${topic}"`, () => {
      const trie = new SubscriptionTrie<number>();
      trie.set(filter, 'c1', 1);
      trie.set('unrelated/filter', 'c2', 2);
      assert.deepEqual(matches(trie, topic), expected ? [`${filter} c1=1`] : []);
    });
  }

  test('set returns true for a new (filter, key) and false when it replaces the value', () => {
    const trie = new SubscriptionTrie<number>();
    assert.equal(trie.set('a/+', 'c1', 1), true);
    assert.equal(trie.set('a/+', 'c2', 2), true);
    assert.equal(trie.set('a/#', 'c1', 3), true);
    assert.equal(trie.set('a/+', 'c1', 4), false);
    assert.equal(trie.size, 3);
    assert.equal(trie.get('a/+', 'c1'), 4);
    assert.equal(trie.get('a/+', 'c2'), 2);
    assert.equal(trie.get('a/#', 'c1'), 3);
    assert.equal(trie.get('a/#', 'c2'), undefined);
    assert.equal(trie.get('a', 'c1'), undefined);
    assert.equal(trie.get('x/y', 'c1'), undefined);
  });

  test('match visits every matching (filter, key) once, with its value and filter', () => {
    const trie = new SubscriptionTrie<string>();
    trie.set('sport/tennis/player1/#', 'a', 'qos1');
    trie.set('sport/#', 'a', 'qos0');
    trie.set('sport/#', 'b', 'qos2');
    trie.set('+/tennis/+', 'c', 'qos0');
    trie.set('sport/tennis/player1', 'd', 'qos1');
    trie.set('#', 'e', 'qos0');
    trie.set('sport/tennis/player2', 'f', 'qos0');
    assert.deepEqual(matches(trie, 'sport/tennis/player1'), [
      '# e=qos0',
      '+/tennis/+ c=qos0',
      'sport/# a=qos0',
      'sport/# b=qos2',
      'sport/tennis/player1 d=qos1',
      'sport/tennis/player1/# a=qos1',
    ]);
    assert.deepEqual(matches(trie, 'sport'), ['# e=qos0', 'sport/# a=qos0', 'sport/# b=qos2']);
  });

  test('"a/#" matches "a" as well as everything below it [MQTT-4.7.1-2]', () => {
    const trie = new SubscriptionTrie<number>();
    trie.set('a/#', 'k', 1);
    assert.deepEqual(matches(trie, 'a'), ['a/# k=1']);
    assert.deepEqual(matches(trie, 'a/b/c'), ['a/# k=1']);
    assert.deepEqual(matches(trie, 'ab'), []);
  });

  test('wildcard-first filters do not receive $ topics but $SYS/# does [MQTT-4.7.2-1]', () => {
    const trie = new SubscriptionTrie<number>();
    trie.set('#', 'all', 1);
    trie.set('+/monitor/Clients', 'plus', 2);
    trie.set('$SYS/#', 'sys', 3);
    trie.set('$SYS/monitor/+', 'sysplus', 4);
    assert.deepEqual(matches(trie, '$SYS/monitor/Clients'), ['$SYS/# sys=3', '$SYS/monitor/+ sysplus=4']);
    assert.deepEqual(matches(trie, 'x/monitor/Clients'), ['# all=1', '+/monitor/Clients plus=2']);
  });

  test('empty levels are real levels: "a//b" and "/a"', () => {
    const trie = new SubscriptionTrie<number>();
    trie.set('a//b', 'k', 1);
    trie.set('/+', 'k', 2);
    trie.set('+/+', 'k', 3);
    trie.set('a/+/b', 'k', 4);
    assert.deepEqual(matches(trie, 'a//b'), ['a/+/b k=4', 'a//b k=1']);
    assert.deepEqual(matches(trie, '/finance'), ['+/+ k=3', '/+ k=2']);
    assert.deepEqual(matches(trie, 'a/b'), ['+/+ k=3']);
  });

  test('delete removes one entry, reports whether it existed, and keeps the others', () => {
    const trie = new SubscriptionTrie<number>();
    trie.set('a/b', 'c1', 1);
    trie.set('a/b', 'c2', 2);
    trie.set('a/b', 'c3', 3);
    assert.equal(trie.delete('a/b', 'c1'), true);
    assert.equal(trie.delete('a/b', 'c1'), false);
    assert.equal(trie.delete('a/c', 'c2'), false);
    assert.equal(trie.delete('a', 'c2'), false);
    assert.equal(trie.size, 2);
    assert.deepEqual(matches(trie, 'a/b'), ['a/b c2=2', 'a/b c3=3']);
    assert.equal(trie.get('a/b', 'c3'), 3);
    assert.equal(trie.set('a/b', 'c3', 33), false);
    assert.equal(trie.get('a/b', 'c3'), 33);
  });

  test('delete prunes nodes left without entries or children, and only those', () => {
    const trie = new SubscriptionTrie<number>();
    trie.set('a/b/c/d', 'k', 1);
    trie.set('a/+/#', 'k', 2);
    trie.set('a', 'k', 3);
    assert.equal(nodeCount(trie), 6); // a, b, c, d, +, #
    trie.delete('a/b/c/d', 'k');
    assert.equal(nodeCount(trie), 3); // a, +, #
    trie.delete('a/+/#', 'k');
    assert.equal(nodeCount(trie), 1); // a still holds an entry
    trie.delete('a', 'k');
    assert.equal(nodeCount(trie), 0);
    assert.equal(trie.size, 0);
    assert.deepEqual(matches(trie, 'a'), []);
  });

  test('a trie filled and emptied in any order ends with no nodes', () => {
    const trie = new SubscriptionTrie<number>();
    const filters = ['#', '+', 'a', 'a/#', 'a/+', '+/b', 'a/b', '/a', '//', 'a//b', '$SYS/#'];
    filters.forEach((f, i) => { trie.set(f, 'x', i); trie.set(f, 'y', i); });
    assert.equal(trie.size, filters.length * 2);
    for (const f of [...filters].reverse()) assert.equal(trie.delete(f, 'x'), true);
    for (const f of filters) assert.equal(trie.delete(f, 'y'), true);
    assert.equal(trie.size, 0);
    assert.equal(nodeCount(trie), 0);
  });

  test('clear removes every entry', () => {
    const trie = new SubscriptionTrie<number>();
    trie.set('a/b', 'k', 1);
    trie.set('#', 'k', 1);
    trie.clear();
    assert.equal(trie.size, 0);
    assert.deepEqual(matches(trie, 'a/b'), []);
  });

  test('repeated matches of the same topic give the same answer (split cache)', () => {
    const trie = new SubscriptionTrie<number>();
    trie.set('a/+', 'k', 1);
    for (let i = 0; i < 3000; i++) {
      assert.deepEqual(matches(trie, `a/${i % 1500}`), ['a/+ k=1']);
    }
    const long = `a/${'x'.repeat(1000)}`;
    assert.deepEqual(matches(trie, long), ['a/+ k=1']);
    assert.deepEqual(matches(trie, long), ['a/+ k=1']);
  });

  test('match visits only nodes on matching paths, not every subscription', () => {
    const trie = new SubscriptionTrie<number>();
    for (let i = 0; i < 20000; i++) trie.set(`devices/${i}/state`, `c${i}`, i);
    // Replace the children map of "devices" by one that records lookups and forbids scans.
    type N = { children?: Map<string, N> };
    const devices = (trie as unknown as { root: N }).root.children!.get('devices')!;
    const real = devices.children!;
    let lookups = 0;
    devices.children = {
      get: (k: string) => { lookups++; return real.get(k); },
      get size() { return real.size; },
      values: () => { throw new Error('scanned'); },
      [Symbol.iterator]: () => { throw new Error('scanned'); },
    } as unknown as Map<string, N>;
    assert.deepEqual(matches(trie, 'devices/1234/state'), ['devices/1234/state c1234=1234']);
    assert.equal(lookups, 1);
  });
});
