// The npm package as a user gets it: `npm pack`, then `npm install <tarball> --omit=dev` into an empty
// directory, and the installed `midge` bin and library used from there (nothing of this repository on the
// module path except the project's typescript and @types/node for the type check).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, accepts } from '../helpers/ports.js';
import { exitOf, killAll, run, spawnTracked } from '../helpers/proc.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const NPM_MS = 120_000;
const CMD_MS = 20_000;

let work = '';
let app = '';
let tarball = '';
let packed: string[] = [];
// the installed bins start `node` through their #! line: the node running the tests comes first on PATH
const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
const bin = (): string => join(app, 'node_modules/.bin/midge');
const pkgDir = (): string => join(app, 'node_modules/midge');

function npm(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // `npm` is a script that runs node: it finds the test's node on PATH
  return run('/bin/sh', ['-c', `cd "$0" && exec npm "$@"`, cwd, ...args], { timeoutMs: NPM_MS, env });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'midge-pkg-'));
  app = join(work, 'app');
  mkdirSync(app);
  // --ignore-scripts: no prepack build here (dist/ is what the test run was built from)
  const pack = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], root);
  assert.equal(pack.code, 0, pack.stderr);
  const info = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, info[0]!.filename);
  packed = info[0]!.files.map((f) => f.path);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  // from the npm cache that `npm ci` filled where it can be (the registry otherwise)
  // --ignore-scripts: better-sqlite3's native build (minutes on this machine) is not what this test checks;
  // the durable store loads it only when `persistence true` asks for it
  const install = await npm(['install', tarball, '--omit=dev', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'], app);
  assert.equal(install.code, 0, `${install.stdout}\n${install.stderr}`);
});

after(async () => {
  await killAll();
  if (work !== '') rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the built library and bin, the docs, and no tests, maps or scripts', () => {
  for (const f of ['package.json', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js',
    'dist/src/bench/worker.js', 'dist/src/bench/pacer.js', 'docs/ARCHITECTURE.md', 'dist/browser/midge-client.js',
    'dist/dashboard/index.html', 'dist/dashboard/dashboard.js', 'dist/dashboard/midge-client.js']) {
    assert.ok(packed.includes(f), `${f} is missing from the tarball`);
  }
  const stray = packed.filter((f) =>
    !(f === 'package.json' || f === 'README.md' || f === 'LICENSE' || f.startsWith('docs/') ||
      (f.startsWith('dist/src/') && !f.startsWith('dist/src/browser/') && (f.endsWith('.js') || f.endsWith('.d.ts'))) ||
      f === 'dist/browser/midge-client.js' || f.startsWith('dist/dashboard/')));
  assert.deepEqual(stray, [], 'files outside the shipped set');
  assert.ok(packed.length < 400, `${packed.length} files`);
});

test('every bare import of the shipped code is a dependency and installed without dev dependencies', () => {
  const pkg = JSON.parse(readFileSync(join(pkgDir(), 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const deps = Object.keys(pkg.dependencies ?? {});
  const builtins = new Set(builtinModules);
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (n.endsWith('.js')) files.push(p);
    }
  };
  walk(join(pkgDir(), 'dist/src'));
  assert.ok(files.length > 50, `${files.length} modules`);
  const bare = new Map<string, string>();
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)) {
      const spec = m[1]!;
      if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
      bare.set(name, relative(pkgDir(), f));
    }
  }
  assert.ok(bare.has('ws') && bare.has('hdr-histogram-js'), `found ${[...bare.keys()].join(', ')}`);
  for (const [name, where] of bare) {
    assert.ok(deps.includes(name), `${where} imports '${name}', which is not in dependencies`);
    assert.ok(existsSync(join(app, 'node_modules', name, 'package.json')), `'${name}' was not installed`);
  }
  // nothing but the dependencies' own trees came along (no typescript, mqtt, aedes, ...)
  // (@types/node comes with @types/better-sqlite3, a dependency: the store's declarations use its types)
  for (const dev of ['typescript', 'mqtt', 'aedes', 'fast-check']) {
    assert.ok(!existsSync(join(app, 'node_modules', dev)), `${dev} was installed`);
  }
});

test('midge --help, midge bench --help and midge sub --help run from the installed bin', async () => {
  const help = await run(bin(), ['--help'], { timeoutMs: CMD_MS, env });
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: midge <command>/);
  // `midge bench` loads its histogram library (hdr-histogram-js) at start
  const bench = await run(bin(), ['bench', '--help'], { timeoutMs: CMD_MS, env });
  assert.equal(bench.code, 0, bench.stderr);
  assert.match(bench.stdout, /midge bench/);
  // the clients read their version from the installed package.json
  const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string;
  const sub = await run(bin(), ['sub', '--help'], { timeoutMs: CMD_MS, env });
  assert.ok(sub.stdout.includes(`midge sub version ${version}.`), sub.stdout);
});

test('the installed midge broker runs with its node flags; midge pub and sub exchange a message through it', async () => {
  const port = await freePort();
  const broker = spawnTracked(bin(), ['broker', '-p', String(port), '-v'], { env });
  let logs = '';
  broker.stdout?.setEncoding('utf8').on('data', (s: string) => (logs += s));
  broker.stderr?.setEncoding('utf8').on('data', (s: string) => (logs += s));
  const waitFor = async (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => {
    const deadline = Math.round(performance.now()) + 10_000;
    while (!(await ok())) {
      assert.ok(broker.exitCode === null, `the broker exited while waiting for ${what}:\n${logs}`);
      assert.ok(Math.round(performance.now()) < deadline, `timed out waiting for ${what}:\n${logs}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await waitFor('the broker to accept connections', () => accepts(port));
    // the #! line (env -S node FLAGS) started node with the flags: its own command line says so
    const argv = readFileSync(`/proc/${broker.pid}/cmdline`, 'utf8').split('\0');
    assert.deepEqual(argv.slice(1, 1 + NODE_FLAGS.length), [...NODE_FLAGS], argv.join(' '));
    assert.match(argv[1 + NODE_FLAGS.length]!, /node_modules\/(midge|\.bin)\/.*main\.js$|node_modules\/\.bin\/midge$/);

    const sub = spawnTracked(bin(), ['sub', '-h', '127.0.0.1', '-p', String(port), '-t', 'pkg/test', '-C', '1', '-v'], { env });
    let out = '';
    sub.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
    sub.stdin?.end();
    await waitFor('the subscription', () => /Received SUBSCRIBE/.test(logs));
    const pub = await run(bin(), ['pub', '-h', '127.0.0.1', '-p', String(port), '-t', 'pkg/test', '-m', 'from the tarball'], { timeoutMs: CMD_MS, env });
    assert.equal(pub.code, 0, pub.stderr);
    const timer = setTimeout(() => sub.kill('SIGKILL'), CMD_MS);
    const exit = await exitOf(sub);
    clearTimeout(timer);
    assert.equal(exit.code, 0, `sub: ${JSON.stringify(exit)} ${out}`);
    assert.equal(out, 'pkg/test from the tarball\n');
  } finally {
    if (broker.exitCode === null) {
      process.kill(broker.pid!, 'SIGTERM');
      const t = setTimeout(() => broker.kill('SIGKILL'), 3000);
      await exitOf(broker);
      clearTimeout(t);
    }
  }
});

test('the library imports from an ES module as `midge`: an embedded broker and a client talk', async () => {
  const script = `
    import { createBroker, connect } from 'midge';
    const broker = createBroker({ listeners: [{ port: 0, host: '127.0.0.1' }] });
    const [{ port }] = await broker.listen();
    const client = await connect('mqtt://127.0.0.1:' + port, { clientId: 'pkg' });
    await client.subscribe('pkg/lib', { qos: 1 });
    await client.publish('pkg/lib', 'hello', { qos: 1 });
    for await (const m of client.messages('pkg/lib')) { console.log(m.topic, m.payload.toString()); break; }
    await client.end();
    await broker.close();
    // the cluster's entry point (it loads ioredis only when a cluster is opened)
    const cluster = await import('midge/cluster');
    console.log(typeof cluster.openCluster);
  `;
  writeFileSync(join(app, 'lib.mjs'), script);
  const r = await run(process.execPath, [join(app, 'lib.mjs')], { timeoutMs: CMD_MS, env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'pkg/lib hello\nfunction\n');
});

test('a TypeScript consumer type-checks against the shipped declarations', async () => {
  writeFileSync(join(app, 'consumer.ts'), `
    import { createBroker, connect, type BrokerOptions, type MqttClient, ConnectionRefusedError } from 'midge';
    const options: Partial<BrokerOptions> = { listeners: [{ port: 0, host: '127.0.0.1' }] };
    const broker = createBroker(options);
    const addresses: Array<{ host: string; port: number }> = await broker.listen();
    const client: MqttClient = await connect(\`mqtt://127.0.0.1:\${addresses[0]!.port}\`, { protocolVersion: 5 });
    const granted: number = await client.subscribe('t', { qos: 1 });
    export const isRefused = (e: unknown): boolean => e instanceof ConnectionRefusedError;
    // @ts-expect-error a listener's port is a number: the declarations are real, not 'any'
    createBroker({ listeners: [{ port: 'nope' }] });
    await client.end();
    await broker.close();
    console.log(granted);
  `);
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true,
      // the project's own @types/node (the consumer installs it as a dev dependency of its own)
      typeRoots: [join(root, 'node_modules/@types')], types: ['node'],
    },
    files: ['consumer.ts'],
  }));
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const r = await run(process.execPath, [tsc, '-p', join(app, 'tsconfig.json')], { timeoutMs: 60_000, env });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
});
