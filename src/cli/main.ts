#!/usr/bin/env -S node --max-semi-space-size=2
/**
 * `midge <command> [options]`: a thin dispatcher. Each command lives in its own module
 * (src/cli/<command>.ts) that exports `run(argv): Promise<number>`, resolving to the exit code.
 */
const commands: Record<string, string> = {
  broker: 'run an MQTT broker (like mosquitto)',
  pub: 'publish a message (like mosquitto_pub)',
  sub: 'subscribe and print messages (like mosquitto_sub)',
  rr: 'request/response (like mosquitto_rr)',
  passwd: 'manage a password file (like mosquitto_passwd)',
  bench: 'load generator for any MQTT broker',
  db: 'check, compact or dump a persistence database (offline)',
};

function usage(): string {
  const lines = Object.entries(commands).map(([c, d]) => `  ${c.padEnd(8)} ${d}`);
  return `Usage: midge <command> [options]\n\nCommands:\n${lines.join('\n')}\n\nRun 'midge <command> --help' for the options of a command.`;
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    process.exitCode = cmd === undefined ? 1 : 0;
    return;
  }
  if (!Object.hasOwn(commands, cmd)) {
    console.error(`midge: unknown command '${cmd}'\n\n${usage()}`);
    process.exitCode = 1;
    return;
  }
  const mod = (await import(`./${cmd}.js`)) as { run(argv: string[]): Promise<number> };
  const code = await mod.run(rest);
  if (typeof code === 'number') process.exitCode = code;
}

main().catch((err: unknown) => {
  console.error(`Error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
