import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isValidTopicFilter, isValidTopicName, topicMatches, MAX_TOPIC_LEVELS,
} from '../../src/topic/index.js';
import { MATCH_TABLE } from './tables.js';

const VALID_NAMES = [
  'a', '/', '//', 'a/b', '/a', 'a/', 'a//b', 'sport/tennis/player1', '$SYS/broker/uptime', ' ', 'a b',
  'caf\u00e9', '\u{1F600}/x', 'x'.repeat(65535), '\u00e9'.repeat(32767), '/'.repeat(MAX_TOPIC_LEVELS - 1),
];
const INVALID_NAMES = [
  '', 'a/+', '+', '#', 'a/#', 'sport+', 'a#b', 'a\u0000b', 'x'.repeat(65536), '\u00e9'.repeat(32768),
  '\ud800', 'a\udc00b', '\u{1F600}'.slice(0, 1), '/'.repeat(MAX_TOPIC_LEVELS),
];
const VALID_FILTERS = [
  'a', '#', '+', '/', '+/+', '/+', '+/', 'a/#', 'a/+/b', '+/tennis/#', 'sport/tennis/+', '$SYS/#',
  '//', 'a//#', '+/+/+', '$share/g/a', 'x'.repeat(65535), '/'.repeat(MAX_TOPIC_LEVELS - 1),
];
const INVALID_FILTERS = [
  '', 'sport/tennis#', 'sport/tennis/#/ranking', 'sport+', 'sport/+x', 'x+/a', '#/', '#/a', '##', '++',
  'a/b#', 'a\u0000', 'x'.repeat(65536), '\udfff', '/'.repeat(MAX_TOPIC_LEVELS), 'a/#/#',
];

describe('topic name validity', () => {
  for (const name of VALID_NAMES) {
    test(`accepts ${JSON.stringify(name.length > 40 ? `${name.slice(0, 12)}…(${name.length})` : name)}`, () => {
      assert.equal(isValidTopicName(name), true);
    });
  }
  for (const name of INVALID_NAMES) {
    test(`rejects ${JSON.stringify(name.length > 40 ? `${name.slice(0, 12)}…(${name.length})` : name)}`, () => {
      assert.equal(isValidTopicName(name), false);
    });
  }
  test('a topic name must be at least one character long [MQTT-4.7.3-1]', () => {
    assert.equal(isValidTopicName(''), false);
  });
  test('a topic name must not contain wildcard characters [MQTT-3.3.2-2]', () => {
    assert.equal(isValidTopicName('a/+/b'), false);
    assert.equal(isValidTopicName('a/#'), false);
  });
  test('a topic name must not contain U+0000 [MQTT-4.7.3-2]', () => {
    assert.equal(isValidTopicName('a\u0000'), false);
  });
  test('a topic name is at most 65535 UTF-8 bytes, counted in bytes not characters [MQTT-4.7.3-3]', () => {
    assert.equal(isValidTopicName('\u{1F600}'.repeat(16383) + 'abc'), true); // 65532 + 3 bytes
    assert.equal(isValidTopicName('\u{1F600}'.repeat(16383) + 'abcd'), false); // 65536 bytes
    assert.equal(isValidTopicName('\u20ac'.repeat(21845)), true); // 65535 bytes
    assert.equal(isValidTopicName('\u20ac'.repeat(21845) + 'a'), false);
  });
  test('the level limit can be lifted to check only the spec rules', () => {
    assert.equal(isValidTopicName('/'.repeat(1000), Infinity), true);
    assert.equal(isValidTopicFilter('+/'.repeat(1000) + '#', Infinity), true);
    assert.equal(isValidTopicName('a/b/c', 2), false);
  });
});

describe('topic filter validity', () => {
  for (const filter of VALID_FILTERS) {
    test(`accepts ${JSON.stringify(filter.length > 40 ? `${filter.slice(0, 12)}…(${filter.length})` : filter)}`, () => {
      assert.equal(isValidTopicFilter(filter), true);
    });
  }
  for (const filter of INVALID_FILTERS) {
    test(`rejects ${JSON.stringify(filter.length > 40 ? `${filter.slice(0, 12)}…(${filter.length})` : filter)}`, () => {
      assert.equal(isValidTopicFilter(filter), false);
    });
  }
  test('"#" must be the last character and alone in its level [MQTT-4.7.1-2]', () => {
    assert.equal(isValidTopicFilter('sport/tennis/#'), true);
    assert.equal(isValidTopicFilter('sport/tennis#'), false);
    assert.equal(isValidTopicFilter('sport/tennis/#/ranking'), false);
  });
  test('"+" must occupy an entire level [MQTT-4.7.1-3]', () => {
    assert.equal(isValidTopicFilter('sport/+/player1'), true);
    assert.equal(isValidTopicFilter('sport+'), false);
  });
});

describe('topicMatches', () => {
  for (const [filter, topic, expected] of MATCH_TABLE) {
    test(`"${filter}" ${expected ? 'matches' : 'does not match'} "${topic}"`, () => {
      assert.equal(isValidTopicFilter(filter), true, 'the table uses valid filters');
      assert.equal(isValidTopicName(topic), true, 'the table uses valid names');
      assert.equal(topicMatches(filter, topic), expected);
    });
  }
  test('a topic name equal to the filter matches it when the filter has no wildcards', () => {
    for (const t of VALID_NAMES) if (t.length < 1000) assert.equal(topicMatches(t, t), true, t);
  });
});
