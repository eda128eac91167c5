import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  SubscriptionTrie, TopicTree, isValidTopicFilter, isValidTopicName, topicMatches,
} from '../../src/topic/index.js';

/** A reference matcher written straight from the spec's words, level by level. */
function referenceMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true; // matches the parent level and any number of child levels
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

// A small alphabet so that random filters and topics often match: empty levels, $ levels, a shared prefix.
const nameLevel = fc.constantFrom('a', 'b', 'ab', '', '$a', '$SYS');
const topicArb = fc.array(nameLevel, { minLength: 1, maxLength: 5 })
  .map((ls) => ls.join('/'))
  .filter((t) => t.length > 0);
const filterArb = fc.tuple(
  fc.array(fc.oneof(nameLevel, fc.constant('+')), { minLength: 0, maxLength: 5 }),
  fc.boolean(),
).map(([ls, hash]) => (hash ? [...ls, '#'] : ls).join('/'))
  .filter((f) => f.length > 0);

describe('matching properties', () => {
  test('generated filters and topics are valid', () => {
    fc.assert(fc.property(filterArb, topicArb, (f, t) => isValidTopicFilter(f) && isValidTopicName(t)));
  });

  test('topicMatches agrees with a level-by-level reference matcher', () => {
    fc.assert(fc.property(filterArb, topicArb, (f, t) => {
      assert.equal(topicMatches(f, t), referenceMatches(f, t), `${f} vs ${t}`);
    }), { numRuns: 5000 });
  });

  test('SubscriptionTrie.match returns exactly the filters that topicMatches accepts', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(filterArb, fc.constantFrom('k1', 'k2', 'k3')), { maxLength: 30 }),
      fc.array(topicArb, { minLength: 1, maxLength: 10 }),
      (subs, topics) => {
        const trie = new SubscriptionTrie<string>();
        const expected = new Map<string, string>();
        for (const [f, k] of subs) {
          trie.set(f, k, `${f}|${k}`);
          expected.set(`${f}\u0000${k}`, `${f}|${k}`);
        }
        assert.equal(trie.size, expected.size);
        for (const t of topics) {
          const got: string[] = [];
          trie.match(t, (v, k, f) => {
            assert.equal(v, `${f}|${k}`);
            got.push(v);
          });
          const want = [...expected.values()].filter((v) => topicMatches(v.split('|')[0]!, t));
          assert.deepEqual(got.sort(), want.sort(), `topic ${t}`);
        }
      },
    ), { numRuns: 500 });
  });

  test('SubscriptionTrie stays consistent under random set and delete, and prunes to nothing', () => {
    const op = fc.tuple(fc.boolean(), filterArb, fc.constantFrom('k1', 'k2'));
    fc.assert(fc.property(fc.array(op, { maxLength: 60 }), topicArb, (ops, topic) => {
      const trie = new SubscriptionTrie<number>();
      const model = new Map<string, number>();
      ops.forEach(([add, f, k], i) => {
        const id = `${f}\u0000${k}`;
        if (add) assert.equal(trie.set(f, k, i), !model.has(id));
        else assert.equal(trie.delete(f, k), model.has(id));
        if (add) model.set(id, i); else model.delete(id);
        assert.equal(trie.size, model.size);
      });
      for (const [id, v] of model) {
        const [f, k] = id.split('\u0000') as [string, string];
        assert.equal(trie.get(f, k), v);
      }
      let n = 0;
      trie.match(topic, () => { n++; });
      assert.equal(n, [...model.keys()].filter((id) => topicMatches(id.split('\u0000')[0]!, topic)).length);
      for (const id of model.keys()) {
        const [f, k] = id.split('\u0000') as [string, string];
        assert.equal(trie.delete(f, k), true);
      }
      const root = (trie as unknown as { root: { children?: Map<string, unknown>; plus?: unknown; hash?: unknown } }).root;
      assert.equal(trie.size, 0);
      assert.equal(root.children?.size ?? 0, 0);
      assert.equal(root.plus, undefined);
      assert.equal(root.hash, undefined);
    }), { numRuns: 500 });
  });

  test('TopicTree.match returns exactly the stored topics that topicMatches accepts', () => {
    fc.assert(fc.property(
      fc.uniqueArray(topicArb, { maxLength: 30 }),
      fc.array(filterArb, { minLength: 1, maxLength: 10 }),
      (topics, filters) => {
        const tree = new TopicTree<string>();
        for (const t of topics) tree.set(t, t);
        assert.equal(tree.size, topics.length);
        for (const f of filters) {
          const got: string[] = [];
          tree.match(f, (t, v) => { assert.equal(t, v); got.push(t); });
          assert.deepEqual(got.sort(), topics.filter((t) => topicMatches(f, t)).sort(), `filter ${f}`);
        }
        for (const t of topics) assert.equal(tree.delete(t), true);
        assert.equal(tree.size, 0);
      },
    ), { numRuns: 500 });
  });

  test('isValidTopicFilter accepts exactly the filters whose levels are literal, "+" or a final "#"', () => {
    const level = fc.constantFrom('a', '', '+', '#', 'a+', '#a', '+#', '$');
    fc.assert(fc.property(fc.array(level, { minLength: 1, maxLength: 5 }), (ls) => {
      const f = ls.join('/');
      const expected = f.length > 0 && ls.every((l, i) =>
        l === '+' || (l === '#' && i === ls.length - 1) || (!l.includes('+') && !l.includes('#')));
      assert.equal(isValidTopicFilter(f), expected, f);
    }), { numRuns: 2000 });
  });
});
