/**
 * The web dashboard's static files (docs/http.md): dashboard/ in the repository, copied to dist/dashboard/
 * by `npm run build` with the browser client bundle (midge-client.js) next to them. `/` is index.html;
 * other files are served by their flat name only (no sub-directories, no `..`), read once and kept.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { ApiResult } from './api.js';

/** dist/src/http/dashboard.js → dist/dashboard/ */
const DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  json: 'application/json; charset=utf-8',
  map: 'application/json; charset=utf-8',
};

let files: Map<string, string> | undefined;

function load(): Map<string, string> {
  if (files !== undefined) return files;
  const m = new Map<string, string>();
  try {
    for (const name of readdirSync(DIR)) {
      const ext = name.slice(name.lastIndexOf('.') + 1);
      if (TYPES[ext] !== undefined) m.set(name, readFileSync(join(DIR, name), 'utf8'));
    }
  } catch {
    // not built (tsc alone): `/` answers 404 saying so
  }
  return (files = m);
}

/** The dashboard's answer for `path`, or undefined when the path is not one of its files. */
export function dashboardFile(path: string): ApiResult | undefined {
  const name = path === '/' ? 'index.html' : /^\/([A-Za-z0-9_-][A-Za-z0-9._-]*)$/.exec(path)?.[1];
  if (name === undefined) return undefined;
  const body = load().get(name);
  if (body === undefined) {
    return path === '/' ? { status: 404, body: { error: 'the dashboard is not built (npm run build copies it to dist/dashboard/)' } } : undefined;
  }
  const ext = name.slice(name.lastIndexOf('.') + 1);
  return { status: 200, body, headers: { 'content-type': TYPES[ext]! } };
}
