/**
 * The SQLite store: the contract suite (including reopen), then what only a file can do wrong.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite.js';
import { openSqliteThreadStore, type SqliteThreadStore } from '../../src/store/sqlite-thread.js';
import { storeContract } from './contract.js';

const dir = await mkdtemp(join(tmpdir(), 'midge-store-'));
let n = 0;

storeContract({
  name: 'sqlite',
  open: () => openSqliteStore({ file: join(dir, `contract-${++n}.db`) }),
  reopen: async (s) => {
    const file = (s as SqliteStore).file;
    await s.close();
    return openSqliteStore({ file });
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
  cleanup: () => rm(dir, { recursive: true, force: true }),
});
