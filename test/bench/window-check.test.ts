// bench/window-check.mjs: Midge keeps exactly max_inflight_messages (20) QoS 1 messages unacknowledged
// for a subscriber however many it has acknowledged, offline (resumed session) and online; bad knobs
// are refused (exit 2) before any broker starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../bench/window-check.mjs', import.meta.url));

interface Row { broker: string; way: string; k: number; received: number; acked: number; unacknowledged: number }

test('Midge: K acknowledged, K + 20 received, 20 unacknowledged, for every K and both ways', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, [SCRIPT], {
    encoding: 'utf8', timeout: 110_000, env: { ...process.env, BROKERS: 'midge', N: '200', KS: '0,3,40', QUIET_MS: '300' },
  });
  assert.equal(r.status, 0, r.stderr);
  const json = /^JSON (.*)$/m.exec(r.stdout);
  assert.ok(json, r.stdout);
  const rows = JSON.parse(json[1]!) as Row[];
  assert.equal(rows.length, 6, r.stdout);
  for (const row of rows) {
    assert.equal(row.broker, 'midge');
    assert.equal(row.acked, row.k, `${row.way} K=${row.k}: the client acknowledged K`);
    assert.equal(row.received, row.k + 20, `${row.way} K=${row.k}: ${row.received} received`);
    assert.equal(row.unacknowledged, 20);
  }
  assert.deepEqual(rows.map((x) => `${x.way}/${x.k}`), ['offline/0', 'offline/3', 'offline/40', 'online/0', 'online/3', 'online/40']);
  assert.match(r.stdout, /^\| midge \| offline \| 40 \| 60 \| 20 \|$/m);
});

for (const [env, msg] of [
  [{ KS: 'abc' }, /^KS: expected integers from 0 to N \(500\), not 'abc'$/m],
  [{ KS: '1,600' }, /^KS: expected integers from 0 to N \(500\), not '600'$/m],
  [{ N: '0' }, /^N: expected an integer from 1 to 60000, not '0'$/m],
  [{ QUIET_MS: '1.5' }, /^QUIET_MS: expected an integer from 50 to 5000, not '1.5'$/m],
  [{ BROKERS: 'aedes' }, /^BROKERS: midge or mosquitto, not 'aedes'$/m],
] as const) {
  test(`bench/window-check.mjs with ${JSON.stringify(env)} is refused`, () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, msg);
    assert.equal(r.stdout, '');
  });
}
