/**
 * The SQLite store: the contract suite (including reopen), then what only a file can do wrong.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { openSqliteThreadStore, type SqliteThreadStore } from '../../src/store/sqlite-thread.js';
import { storeContract } from './contract.js';
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { Change } from '../../src/store/store.js';

const dir = await mkdtemp(join(tmpdir(), 'midge-store-'));
let n = 0;
after(() => rm(dir, { recursive: true, force: true }));

storeContract({
  name: 'sqlite',
  open: () => openSqliteStore({ file: join(dir, `contract-${++n}.db`) }),
  reopen: async (s) => {
    const file = (s as SqliteStore).file;
    await s.close();
    return openSqliteStore({ file });
  },
});

// every commit applied to the tables at once (what 'auto' does while folds cancel little out)
storeContract({
  name: 'sqlite, direct commits',
  open: () => openSqliteStore({ file: join(dir, `direct-${++n}.db`), mode: 'direct' }),
  reopen: async (s) => {
    const file = (s as SqliteStore).file;
    await s.close();
    return openSqliteStore({ file, mode: 'direct' });
  },
});

// the same store on its worker thread, as the broker runs it
storeContract({
  name: 'sqlite on a worker thread',
  open: () => openSqliteThreadStore({ file: join(dir, `thread-${++n}.db`) }),
  reopen: async (s) => {
    const file = (s as SqliteThreadStore).file;
    await s.close();
    return openSqliteThreadStore({ file });
  },
});

describe('sqlite store: auto mode', () => {
  test('commits go to the journal while folds cancel most of them, straight to the tables while they do not', async () => {
    const s = await openSqliteStore({ file: join(dir, `auto-${++n}.db`), foldChanges: 2000 });
    const payload = Buffer.alloc(16, 1);
    let id = 0;
    // a persistent subscriber that keeps up: each message sent and acknowledged a commit later
    let open: number[] = [];
    for (let c = 0; c < 40; c++) {
      const set: Change[] = open.map((p) => ({ op: 'inflightDone', clientId: 'on', packetId: p }));
      open = [];
      for (let i = 0; i < 50; i++) {
        id++;
        set.push({ op: 'message', msg: { id, topic: 't', payload, qos: 1, retain: false } });
        set.push({ op: 'inflight', clientId: 'on', ref: { packetId: id, messageId: id, qos: 1, retain: false, state: 'publish' } });
        open.push(id);
      }
      await s.commit(set);
    }
    assert.ok(s.folds.count >= 1, 'folded');
    assert.equal(s.folds.direct, 0, 'folds cancelled most: still the journal');
    assert.ok(s.folds.written < s.folds.changes / 4, `written ${s.folds.written} of ${s.folds.changes}`);
    // an offline queue: nothing cancels
    for (let c = 0; c < 60; c++) {
      const set: Change[] = [];
      for (let i = 0; i < 50; i++) {
        id++;
        set.push({ op: 'message', msg: { id, topic: 't', payload, qos: 1, retain: false } });
        set.push({ op: 'enqueue', clientId: 'off', ref: { seq: id, messageId: id, qos: 1, retain: false } });
      }
      await s.commit(set);
    }
    assert.ok(s.folds.direct > 0, 'switched to direct commits');
    assert.equal(s.journalRows(), 0, 'direct commits leave nothing in the journal');
    assert.equal((await s.loadWindow('off')).queued.length, 3000);
    await s.close();
  });
});
