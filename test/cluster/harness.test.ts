/**
 * The cluster harness itself, without the cluster: a redis-server with `appendonly` keeps an acknowledged
 * write across SIGKILL + restart on the same port (and one without it does not, so the option is what
 * keeps it), and a plain `midge broker` process starts on a free port and is stopped by PID.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startMidge, stopAllBrokers } from '../helpers/broker-process.js';
import { accepts } from '../helpers/ports.js';
import { startRedis } from '../helpers/redis-server.js';
import { killAll } from '../helpers/proc.js';
import { mosquittoPub, mosquittoSub } from './clients.js';

const T = { timeout: 30_000 };

after(async () => {
  await stopAllBrokers();
  await killAll();
});

function client(url: string): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
  r.on('error', () => undefined);
  return r;
}

async function killRestartKeeps(appendonly: boolean): Promise<string | null> {
  const redis = await startRedis({ appendonly });
  try {
    const r1 = client(redis.url);
    await r1.connect();
    assert.equal(await r1.set('k', 'v1'), 'OK');
    r1.disconnect();
    const pid = redis.pid;
    await redis.kill();
    assert.equal(await accepts(redis.port), false, 'nothing listens after the kill');
    await redis.restart();
    assert.notEqual(redis.pid, pid, 'a new process');
    const r2 = client(redis.url);
    await r2.connect();
    const v = await r2.get('k');
    r2.disconnect();
    return v;
  } finally {
    await redis.stop();
  }
}

describe('cluster harness', () => {
  test('redis-server with appendonly: a write acknowledged before SIGKILL is there after a restart on the same port', T, async () => {
    assert.equal(await killRestartKeeps(true), 'v1');
  });

  test('redis-server without appendonly: the same write is gone after the restart', T, async () => {
    assert.equal(await killRestartKeeps(false), null);
  });

  test('redis stop() ends the process by PID', T, async () => {
    const redis = await startRedis({ appendonly: true });
    const pid = redis.pid;
    await redis.stop();
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
  });

  test('a plain midge broker process starts, serves mosquitto clients, and stops by PID', T, async () => {
    const broker = await startMidge({ config: 'listener {port} 127.0.0.1\nallow_anonymous true\n' });
    assert.equal(broker.running(), true);
    const sub = mosquittoSub('sub', broker.port, ['-t', 'h/t', '-q', '1', '-C', '1']);
    // bounded: publish until the subscriber's SUBSCRIBE has been processed
    for (let i = 0; i < 40 && sub.lines.length === 0; i++) {
      await mosquittoPub(broker.port, ['-t', 'h/t', '-m', `x${i}`, '-q', '1']);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(sub.lines[0] ?? '', /^x\d+$/);
    await broker.stop();
    assert.equal(broker.running(), false);
    const exit = await broker.exited;
    assert.ok(exit.code === 0 || exit.signal === 'SIGTERM', JSON.stringify(exit));
    assert.throws(() => process.kill(broker.pid, 0), /ESRCH/);
    assert.equal(await accepts(broker.port), false);
  });
});
