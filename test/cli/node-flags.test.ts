// The node flags of `midge` are written in three places (src/cli/node-flags.ts); they must agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import { MIDGE_MAIN } from '../helpers/broker-process.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('the #! line of the midge bin runs node with NODE_FLAGS', () => {
  const first = readFileSync(MIDGE_MAIN, 'utf8').split('\n', 1)[0];
  assert.equal(first, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
});

test('npm start runs the broker with NODE_FLAGS', () => {
  const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts.start, new RegExp(`^node ${NODE_FLAGS.join(' ')} dist/src/cli/main\\.js broker\\b`));
});

test('the #! line works as the kernel runs it (env -S splits the flags; node accepts them)', () => {
  // the kernel passes everything after the interpreter as one argument, then the script's path
  const rest = readFileSync(MIDGE_MAIN, 'utf8').split('\n', 1)[0].slice('#!/usr/bin/env '.length);
  const r = spawnSync('/usr/bin/env', [rest, MIDGE_MAIN, '--help'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: midge <command>/);
});
