#!/usr/bin/env node
// Builds what runs in a browser (run by `npm run build` after tsc):
// - dist/browser/midge-client.js: the client library (src/browser/index.ts) as one minified ES module
//   with no Node built-ins (esbuild: `node:events` → the `events` polyfill, Buffer → the `buffer` polyfill,
//   src/transport/connect.ts → src/browser/transport.ts over the browser's WebSocket);
// - dist/dashboard/: the web dashboard's static files (dashboard/), served by the HTTP listener at `/`,
//   with the client bundle copied next to them.
import { build } from 'esbuild';
import { cpSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/browser/midge-client.js');

const browserOnly = {
  name: 'midge-browser',
  setup(b) {
    b.onResolve({ filter: /transport\/connect\.js$/ }, () => ({ path: join(root, 'src/browser/transport.ts') }));
    b.onResolve({ filter: /^node:crypto$/ }, () => ({ path: join(root, 'src/browser/crypto.ts') }));
    b.onResolve({ filter: /^node:events$/ }, () => ({ path: join(root, 'node_modules/events/events.js') }));
    // anything else of Node's would not run in a browser: fail the build
    b.onResolve({ filter: /^node:/ }, (a) => (a.kind === 'import-statement' || a.kind === 'dynamic-import'
      ? { errors: [{ text: `${a.path} (imported by ${a.importer}) is a Node built-in: not for the browser bundle` }] }
      : undefined));
  },
};

const result = await build({
  entryPoints: [join(root, 'src/browser/index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  inject: [join(root, 'src/browser/shims.ts')],
  plugins: [browserOnly],
  outfile: out,
  metafile: true,
  logLevel: 'warning',
});
const inputs = Object.keys(result.metafile.inputs);
const node = inputs.filter((p) => /(^|\/)src\/transport\/(connect|tcp|tls|listen)\.ts$|node_modules\/ws\//.test(p));
if (node.length) throw new Error(`the browser bundle pulled in Node-only modules: ${node.join(', ')}`);

const dash = join(root, 'dist/dashboard');
mkdirSync(dash, { recursive: true });
cpSync(join(root, 'dashboard'), dash, { recursive: true });
cpSync(out, join(dash, 'midge-client.js'));
const polyfills = Object.entries(Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.inputs ?? {})
  .filter(([p]) => p.includes('node_modules/')).reduce((s, [, v]) => s + v.bytesInOutput, 0);
const bytes = statSync(out).size;
const gz = gzipSync(readFileSync(out)).length;
writeFileSync(join(root, 'dist/browser/size.json'), JSON.stringify({ bytes, gzip: gz }) + '\n');
console.log(`browser: dist/browser/midge-client.js ${(bytes / 1024).toFixed(1)} KiB (${(gz / 1024).toFixed(1)} KiB gzip, polyfills ${(polyfills / 1024).toFixed(1)} KiB), dashboard in dist/dashboard/`);
