// bench/run.mjs refuses a bad numeric knob with a clear message (exit 2) before it starts any broker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('../../../bench/run.mjs', import.meta.url));

for (const [name, value, expected] of [
  ['LAT_REPEAT', 'abc', /^LAT_REPEAT=abc: expected an integer from 1 to 100$/m],
  ['REPEAT', '0', /^REPEAT=0: expected an integer from 1 to 100$/m],
  ['DURATION', '-1', /^DURATION=-1: expected a number from 0.1 to 3600$/m],
  ['CONNS', '1.5', /^CONNS=1.5: expected an integer from 1 to 1000000$/m],
  ['QUIET_CPU', 'lots', /^QUIET_CPU=lots: expected a number from 0 to 2$/m],
  ['METRICS_REPEAT', '0', /^METRICS_REPEAT=0: expected an integer from 1 to 100$/m],
  ['DISTURBED_S', '-2', /^DISTURBED_S=-2: expected a number from 0 to 1000$/m],
] as const) {
  test(`bench/run.mjs: ${name}=${value} is refused`, () => {
    const r = spawnSync(process.execPath, [RUN], { env: { ...process.env, [name]: value }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, expected);
    assert.doesNotMatch(r.stderr, /^# bench:/m, 'no run was started');
  });
}
