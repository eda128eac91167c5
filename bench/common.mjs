// Helpers the bench scripts share (bridge.mjs, cluster.mjs): knobs from the environment, medians, number
// formatting and the host's description.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, totalmem } from 'node:os';

/** A number from the environment within [min, max] (an integer unless `integer` is false); exit 2 otherwise. */
export function knob(name, fallback, min, max, integer = true) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    console.error(`${name}=${raw}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
    process.exit(2);
  }
  return v;
}

/** A comma list from the environment, each item one of `allowed` (exit 2 otherwise). */
export function list(name, fallback, allowed) {
  const raw = process.env[name];
  const items = (raw === undefined ? fallback : raw).split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of items) {
    if (!allowed.includes(s)) {
      console.error(`${name}: unknown '${s}' (have: ${allowed.join(', ')})`);
      process.exit(2);
    }
  }
  return [...new Set(items)];
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function fmt(v) {
  if (v === undefined) return 'n/a';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  if (Math.abs(v) >= 10) return String(Math.round(v * 10) / 10);
  return String(Math.round(v * 100) / 100);
}

/** The host: cores, CPU model, memory, node version and the commit of `root`. */
export function host(root) {
  let cpuModel = cpus()[0]?.model;
  try {
    cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpuModel;
  } catch {
    // keep os.cpus()
  }
  return {
    nproc: availableParallelism(), cpuModel, memGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10, node: process.version,
    commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim(),
  };
}
