import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isShareError, parseSharedSubscription } from '../../src/topic/index.js';

describe('parseSharedSubscription', () => {
  test('a filter that does not start with "$share/" is not a shared subscription', () => {
    for (const f of ['a/b', '#', '$SYS/#', '$share', '$sharex/g/a', 'share/g/a', '$SHARE/g/a']) {
      assert.equal(parseSharedSubscription(f), undefined, f);
    }
  });

  const VALID: ReadonlyArray<readonly [string, string, string]> = [
    ['$share/g/a', 'g', 'a'],
    ['$share/consumer1/sport/tennis/+', 'consumer1', 'sport/tennis/+'],
    ['$share/g/#', 'g', '#'],
    ['$share/g//a', 'g', '/a'],
    ['$share/g/$SYS/#', 'g', '$SYS/#'],
    ['$share/$g/x', '$g', 'x'],
    ['$share/g/$share/h/x', 'g', '$share/h/x'],
  ];
  for (const [input, group, filter] of VALID) {
    test(`"${input}" is group "${group}" with filter "${filter}"`, () => {
      assert.deepEqual(parseSharedSubscription(input), { group, filter });
    });
  }

  const INVALID: ReadonlyArray<readonly [string, RegExp]> = [
    ['$share/', /empty ShareName \[MQTT-4\.8\.2-1\]/],
    ['$share//a', /empty ShareName/],
    ['$share/g', /must be followed by "\/" and a topic filter \[MQTT-4\.8\.2-2\]/],
    ['$share/g/', /empty topic filter/],
    ['$share/g+/x', /must not contain "\+" or "#" \[MQTT-4\.8\.2-2\]/],
    ['$share/+/x', /must not contain/],
    ['$share/#', /must not contain/],
    ['$share/g#/x', /must not contain/],
    ['$share/g/a#', /invalid topic filter "a#"/],
    ['$share/g/a/#/b', /invalid topic filter/],
    ['$share/g\u0000/x', /U\+0000/],
  ];
  for (const [input, message] of INVALID) {
    test(`"${input}" is reported as an invalid shared subscription`, () => {
      const r = parseSharedSubscription(input);
      assert.ok(isShareError(r), `expected an error, got ${JSON.stringify(r)}`);
      assert.match(r.error, message);
    });
  }

  test('isShareError tells the three outcomes apart', () => {
    assert.equal(isShareError(undefined), false);
    assert.equal(isShareError({ group: 'g', filter: 'a' }), false);
    assert.equal(isShareError({ error: 'x' }), true);
  });
});
