/**
 * A second process for the SQLite store tests (sqlite-file.test.ts): `node _child.js MODE FILE`.
 * Prints one JSON object per line on stdout.
 *   hold FILE     open the store, print {open:true}, keep it open until killed (at most 60 s)
 *   open FILE     try to open, print {ok:true} or {error, code, name}, close, exit
 *   commit FILE   open, commit one session + a queued message, print {committed:true}, then idle (to be killed)
 *   fill FILE DIR open, commit 64 KiB messages until a commit fails (at most 200), print that error; then
 *                 remount DIR (a tmpfs) 16 MiB larger, commit again, print the result
 */
import { execFileSync } from 'node:child_process';
import { StoreError } from '../../src/store/store.js';
import { openSqliteStore } from '../../src/store/sqlite.js';

const [mode, file, dir] = process.argv.slice(2) as [string, string, string | undefined];
const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const errInfo = (err: unknown): object => ({
  error: err instanceof Error ? err.message : String(err),
  code: (err as { code?: string }).code,
  name: err instanceof StoreError ? 'StoreError' : (err as Error).name,
});
/** Keeps the process (and its open store) alive until it is killed; at most 60 s. */
const idle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 60_000));

switch (mode) {
  case 'hold': {
    const s = await openSqliteStore({ file });
    out({ open: true });
    await idle();
    await s.close();
    break;
  }
  case 'open': {
    try {
      const s = await openSqliteStore({ file });
      out({ ok: true });
      await s.close();
    } catch (err) {
      out(errInfo(err));
    }
    break;
  }
  case 'commit': {
    const s = await openSqliteStore({ file, fsync: process.env.MIDGE_TEST_FSYNC === '1' });
    await s.commit([
      { op: 'session', session: { clientId: 'survivor', protocolVersion: 5, expiryInterval: 60 } },
      { op: 'message', msg: { id: 1, topic: 'k/9', payload: Buffer.from('kill -9'), qos: 1, retain: false } },
      { op: 'enqueue', clientId: 'survivor', ref: { seq: 1, messageId: 1, qos: 1, retain: false } },
    ]);
    out({ committed: true });
    await idle();
    break;
  }
  case 'fill': {
    const s = await openSqliteStore({ file });
    const payload = Buffer.alloc(64 * 1024, 7);
    let id = 0;
    let failure: object | undefined;
    for (let i = 0; i < 200 && failure === undefined; i++) {
      try {
        await s.commit([
          { op: 'message', msg: { id: ++id, topic: 'fill', payload, qos: 1, retain: false } },
          { op: 'enqueue', clientId: 'c', ref: { seq: id, messageId: id, qos: 1, retain: false } },
        ]);
      } catch (err) {
        failure = { ...errInfo(err), at: id };
      }
    }
    // nothing is read while the disk is full: a read folds the journal into the tables, which needs room too
    out({ failure });
    execFileSync('mount', ['-o', 'remount,size=16m', dir!]);
    try {
      await s.commit([
        { op: 'message', msg: { id: ++id, topic: 'fill', payload, qos: 1, retain: false } },
        { op: 'enqueue', clientId: 'c', ref: { seq: id, messageId: id, qos: 1, retain: false } },
      ]);
      out({ after: 'ok', queued: (await s.loadWindow('c')).queued.length });
    } catch (err) {
      out({ after: errInfo(err) });
    }
    await s.close();
    break;
  }
  default:
    throw new Error(`unknown mode ${mode}`);
}
