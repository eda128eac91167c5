/**
 * `midge bench pub|sub|conn|run`: a load generator for any MQTT broker (like emqtt-bench).
 * The work is in src/bench; this file parses the flags and prints.
 */
import { parseArgs, USAGE, type BenchMode } from '../bench/config.js';
import { runBench } from '../bench/coordinator.js';
import { progressLine, summary } from '../bench/report.js';
import { runRetained } from '../bench/retained.js';

const MODES: readonly BenchMode[] = ['pub', 'sub', 'conn', 'run'];

export async function run(argv: string[]): Promise<number> {
  const [mode, ...rest] = argv;
  if (mode === undefined || mode === '--help' || mode === 'help' || rest.includes('--help')) {
    process.stdout.write(USAGE);
    return mode === undefined ? 1 : 0;
  }
  if (!(MODES as readonly string[]).includes(mode)) {
    console.error(`midge bench: unknown subcommand '${mode}' (pub, sub, conn, run)\n\n${USAGE}`);
    return 1;
  }
  let cfg;
  try {
    cfg = parseArgs(mode as BenchMode, rest);
  } catch (err) {
    console.error(`midge bench: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const tty = process.stderr.isTTY && !cfg.quiet;
  let shown = false;
  const result = cfg.retained > 0
    ? await runRetained(cfg)
    : await runBench(cfg, {
      ...(tty ? {
        progress: (p) => {
          process.stderr.write(`\r${progressLine(p)}\x1b[K`);
          shown = true;
        },
      } : {}),
      established: (ok, failed, seconds) => {
        if (shown) process.stderr.write('\n');
        shown = false;
        // a fixed line for scripts that sample the broker while the connections are held
        process.stderr.write(`ESTABLISHED ok=${ok} fail=${failed} elapsed=${seconds.toFixed(3)}\n`);
      },
    });
  if (shown) process.stderr.write('\n');
  if (cfg.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else process.stdout.write(`${summary(result)}\n`);
  const worked = cfg.mode === 'conn' ? (result.conns?.connected ?? 0) > 0
    : cfg.mode === 'pub' ? result.sentTotal > 0
      : result.receivedTotal > 0;
  return worked && !result.timedOut ? 0 : 2;
}
