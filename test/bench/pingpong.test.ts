// bench/pingpong.mjs: a short run prints its figures; bad round counts are refused (exit 2) before any socket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../../bench/pingpong.mjs', import.meta.url));

test('bench/pingpong.mjs 200: both figures and the bound they imply', () => {
  const r = spawnSync(process.execPath, [SCRIPT, '200'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const m = /^rounds 200: one process ([\d.]+) µs per round; two processes ([\d.]+) µs per round \(the server's socket\.write ([\d.]+) µs\); a 20-message window round by round: at most ([\d,]+) msgs\/s$/m.exec(r.stdout);
  assert.ok(m, r.stdout);
  const [, local, cross, write] = m.map(Number);
  assert.ok(local! > 0 && cross! > 0 && write! > 0, r.stdout);
  assert.ok(write! < cross!, 'a write is part of its round');
});

for (const bad of ['abc', '0', '1.5', '-3', '2000000']) {
  test(`bench/pingpong.mjs ${bad} is refused`, () => {
    const r = spawnSync(process.execPath, [SCRIPT, bad], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^rounds: expected an integer from 1 to 1000000, not /m);
    assert.equal(r.stdout, '');
  });
}
