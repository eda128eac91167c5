// bench/bridge.mjs refuses a bad knob with a clear message (exit 2) before it copies or starts anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BRIDGE = fileURLToPath(new URL('../../../bench/bridge.mjs', import.meta.url));

for (const [name, value, expected] of [
  ['REPEAT', '0', /^REPEAT=0: expected an integer from 1 to 20$/m],
  ['DURATION', 'x', /^DURATION=x: expected a number from 0.1 to 600$/m],
  ['BRIDGE_WAIT', '0', /^BRIDGE_WAIT=0: expected a number from 1 to 300$/m],
  ['PAIRS', 'midge-aedes', /^PAIRS: unknown 'midge-aedes' \(have: midge-midge, midge-mosquitto, mosquitto-midge, mosquitto-mosquitto\)$/m],
  ['DIRECT', 'aedes', /^DIRECT: unknown 'aedes'/m],
  ['SCENARIOS', 'lat_q2', /^SCENARIOS: unknown 'lat_q2'/m],
] as const) {
  test(`bench/bridge.mjs: ${name}=${value} is refused`, () => {
    const r = spawnSync(process.execPath, [BRIDGE], { env: { ...process.env, [name]: value }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /^# bridge bench:/m, 'no run was started');
  });
}

test('bench/bridge.mjs: nothing to run is refused', () => {
  const r = spawnSync(process.execPath, [BRIDGE], { env: { ...process.env, PAIRS: '', DIRECT: '' }, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /nothing to run/);
});
