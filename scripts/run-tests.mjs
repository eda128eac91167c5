#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Usage: node scripts/run-tests.mjs [substring filter ...]
// The abuse tier (dist/test/abuse) runs after the other files, on its own.
import { readdirSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';
import { spawnSync } from 'node:child_process';

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
let files = walk('dist/test', []).sort();
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// The abuse tier (test/abuse) loads both cores with a broker and its abusers and measures time and
// memory: it runs after the rest, alone, so that neither disturbs the other.
const alone = (f) => f.includes(`${sep}abuse${sep}`);
let status = 0;
for (const group of [files.filter((f) => !alone(f)), files.filter(alone)]) {
  if (group.length === 0) continue;
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...group], { stdio: 'inherit' });
  if (r.status !== 0) status = r.status ?? 1;
}
process.exit(status);
