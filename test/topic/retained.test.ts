import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TopicTree } from '../../src/topic/index.js';
import { MATCH_TABLE } from './tables.js';

function matched<V>(tree: TopicTree<V>, filter: string): string[] {
  const out: string[] = [];
  tree.match(filter, (topic, value) => out.push(`${topic}=${String(value)}`));
  return out.sort();
}

const TOPICS = [
  'sport', 'sport/', 'sport/tennis', 'sport/tennis/player1', 'sport/tennis/player1/ranking',
  'sport/tennis/player2', 'sport/badminton', 'sports', '/finance', 'finance', '/', '//', 'a//b',
  '$SYS', '$SYS/broker/uptime', '$SYS/monitor/Clients', 'x/monitor/Clients',
];

describe('TopicTree (retained messages)', () => {
  for (const [filter, topic, expected] of MATCH_TABLE) {
    test(`a retained message on "${topic}" is ${expected ? '' : 'not '}returned for "${filter}"`, () => {
      const tree = new TopicTree<number>();
      tree.set(topic, 1);
      tree.set('$unrelated/topic', 2); // matched by none of the table's filters
      assert.deepEqual(matched(tree, filter), expected ? [`${topic}=1`] : []);
    });
  }

  test('match returns every stored topic that matches the filter', () => {
    const tree = new TopicTree<number>();
    TOPICS.forEach((t, i) => tree.set(t, i));
    assert.deepEqual(matched(tree, 'sport/#'), [
      'sport/=1', 'sport/badminton=6', 'sport/tennis/player1/ranking=4', 'sport/tennis/player1=3',
      'sport/tennis/player2=5', 'sport/tennis=2', 'sport=0',
    ]);
    assert.deepEqual(matched(tree, 'sport/+'), ['sport/=1', 'sport/badminton=6', 'sport/tennis=2']);
    assert.deepEqual(matched(tree, '+/+'), ['/=10', '/finance=8', 'sport/=1', 'sport/badminton=6', 'sport/tennis=2']);
    assert.deepEqual(matched(tree, '+/monitor/Clients'), ['x/monitor/Clients=16']);
    assert.deepEqual(matched(tree, 'a/+/b'), ['a//b=12']);
  });

  test('"#" does not return $SYS topics but "$SYS/#" does [MQTT-4.7.2-1]', () => {
    const tree = new TopicTree<string>();
    tree.set('$SYS/broker/uptime', 'u');
    tree.set('$SYS', 's');
    tree.set('a/$SYS', 'a');
    assert.deepEqual(matched(tree, '#'), ['a/$SYS=a']);
    assert.deepEqual(matched(tree, '+'), []);
    assert.deepEqual(matched(tree, '+/+'), ['a/$SYS=a']);
    assert.deepEqual(matched(tree, '$SYS/#'), ['$SYS/broker/uptime=u', '$SYS=s']);
    assert.deepEqual(matched(tree, '$SYS/+/uptime'), ['$SYS/broker/uptime=u']);
  });

  test('set replaces, get and has read, delete removes and reports', () => {
    const tree = new TopicTree<number>();
    tree.set('a/b', 1);
    tree.set('a/b', 2);
    tree.set('a', 3);
    assert.equal(tree.size, 2);
    assert.equal(tree.get('a/b'), 2);
    assert.equal(tree.has('a/b'), true);
    assert.equal(tree.get('a/c'), undefined);
    assert.equal(tree.has('a/b/c'), false);
    assert.equal(tree.delete('a/b/c'), false);
    assert.equal(tree.delete('a/b'), true);
    assert.equal(tree.delete('a/b'), false);
    assert.equal(tree.size, 1);
    assert.deepEqual(matched(tree, '#'), ['a=3']);
  });

  test('delete prunes empty nodes and keeps nodes that still hold a value or children', () => {
    const tree = new TopicTree<number>();
    const root = (tree as unknown as { root: { children?: Map<string, unknown> } }).root;
    tree.set('a/b/c', 1);
    tree.set('a', 2);
    tree.delete('a/b/c');
    assert.deepEqual([...root.children!.keys()], ['a']);
    assert.equal((root.children!.get('a') as { children?: Map<string, unknown> }).children!.size, 0);
    tree.set('x/y', 1);
    tree.delete('a');
    assert.deepEqual([...root.children!.keys()], ['x']);
    tree.delete('x/y');
    assert.equal(root.children!.size, 0);
    assert.equal(tree.size, 0);
  });

  test('clear removes every topic', () => {
    const tree = new TopicTree<number>();
    tree.set('a', 1);
    tree.clear();
    assert.equal(tree.size, 0);
    assert.deepEqual(matched(tree, '#'), []);
  });
});
