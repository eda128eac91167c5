/**
 * Failed logins from one address are slowed down (`midge_failed_login_delay`, `_max`, `_half_life`):
 * measured against the broker process with MQTT.js and with mosquitto_sub, plus the throttle's rules
 * with a fake clock.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { stopAllBrokers } from '../helpers/broker-process.js';
import { closeAllClients, connect } from '../helpers/mqttjs.js';
import { killAll } from '../helpers/proc.js';
import { addressKey, LoginThrottle } from '../../src/auth/throttle.js';
import { midge, mosquittoSub, T } from './_util.js';
import { makePki } from './_pki.js';

afterEach(async () => {
  await closeAllClients();
  await stopAllBrokers();
  await killAll();
});

async function brokerWith(delay: number, max: number): Promise<{ port: number; remove(): void }> {
  const pki = await makePki(); // only for its mosquitto_passwd file (mqtt:test)
  const b = await midge(['listener {port} 127.0.0.1', 'allow_anonymous false', `password_file ${pki.passwd}`,
    `midge_failed_login_delay ${delay}`, `midge_failed_login_delay_max ${max}`], false);
  return { port: b.port, remove: () => pki.remove() };
}

/** ms from CONNECT to the refusal of one login with a wrong password. */
async function failedLogin(port: number, id: string): Promise<number> {
  const start = performance.now();
  await assert.rejects(connect(port, { clientId: id, username: 'mqtt', password: 'guess-' + id, connectTimeout: 10_000 }), /Not authorized|not authori[sz]ed/i);
  return performance.now() - start;
}

describe('failed logins from one address are slowed down', () => {
  test('N failed logins in a row take at least base, 2×base, 4×base, ... each', T, async () => {
    const b = await brokerWith(200, 5000);
    const took: number[] = [];
    for (let i = 0; i < 4; i++) took.push(await failedLogin(b.port, `seq-${i}`));
    const expected = [200, 400, 800, 1600];
    took.forEach((ms, i) => assert.ok(ms >= expected[i]! - 20, `attempt ${i + 1} took ${ms.toFixed(0)} ms, expected at least ${expected[i]}`));
    const total = took.reduce((a, x) => a + x, 0);
    assert.ok(total >= 3000 - 80, `4 failed logins took ${total.toFixed(0)} ms in all`);
    // the right password still works (the address is slowed down, not locked out)
    const ok = await connect(b.port, { clientId: 'after', username: 'mqtt', password: 'test', connectTimeout: 10_000 });
    ok.end(true);
    b.remove();
  });

  test('parallel attempts do not help: their answers are serialised', T, async () => {
    const b = await brokerWith(100, 5000);
    const start = performance.now();
    const done = await Promise.all([0, 1, 2, 3, 4].map((i) => failedLogin(b.port, `par-${i}`).then(() => performance.now() - start)));
    done.sort((x, y) => x - y);
    // 100 + 200 + 400 + 800 + 1600
    assert.ok(done[4]! >= 3100 - 50, `the 5th parallel refusal came after ${done[4]!.toFixed(0)} ms`);
    assert.ok(done[0]! >= 100 - 20, `the 1st parallel refusal came after ${done[0]!.toFixed(0)} ms`);
    b.remove();
  });

  test('with mosquitto_sub: 3 wrong passwords take at least 300 + 600 + 1200 ms', T, async () => {
    const b = await brokerWith(300, 5000);
    const start = performance.now();
    for (let i = 0; i < 3; i++) {
      const r = await mosquittoSub(['-p', String(b.port), '-u', 'mqtt', '-P', `guess${i}`, '-t', 'test', '-W', '5']);
      assert.equal(r.code, 5, r.stderr);
    }
    const took = performance.now() - start;
    assert.ok(took >= 2100 - 50, `took ${took.toFixed(0)} ms`);
    b.remove();
  });

  test('midge_failed_login_delay 0 turns it off', T, async () => {
    const b = await brokerWith(0, 0);
    const start = performance.now();
    for (let i = 0; i < 8; i++) await failedLogin(b.port, `off-${i}`);
    const took = performance.now() - start;
    assert.ok(took < 4000, `8 failed logins without the throttle took ${took.toFixed(0)} ms (with the default it would be over 60 s)`);
    b.remove();
  });
});

describe('LoginThrottle (fake clock)', () => {
  const clock = (): { now: () => number; advance(ms: number): void } => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms) => { t += ms; } };
  };

  test('a failure waits base, then doubles per failure up to the maximum', () => {
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 1000 }, c.now);
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const w = th.schedule('10.0.0.1', true);
      waits.push(w);
      c.advance(w);
    }
    assert.deepEqual(waits, [100, 200, 400, 800, 1000, 1000]);
  });

  test('attempts at the same moment are answered one after another', () => {
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 10_000 }, c.now);
    assert.deepEqual([1, 2, 3, 4].map(() => th.schedule('10.0.0.1', true)), [100, 300, 700, 1500]);
    // a good login from the same address waits for its turn; one from elsewhere does not
    assert.equal(th.schedule('10.0.0.1', false), 1500);
    assert.equal(th.schedule('10.0.0.2', false), 0);
  });

  test('the failure count halves every half-life, so an address recovers', () => {
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 10_000, halfLifeMs: 60_000 }, c.now);
    for (let i = 0; i < 4; i++) c.advance(th.schedule('10.0.0.1', true)); // count 4
    c.advance(60_000); // count 2 → next failure is the 3rd
    assert.equal(th.schedule('10.0.0.1', true), 400);
    c.advance(10 * 60_000);
    assert.equal(th.schedule('10.0.0.1', true), 100, 'after ten half-lives it is a first failure again');
    c.advance(20 * 60_000);
    assert.equal(th.schedule('10.0.0.1', false), 0);
    assert.equal(th.size, 0, 'a recovered address is forgotten');
  });

  test('an address with too much queued is refused without checking the password', () => {
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 400, maxWaitMs: 1000 }, c.now);
    assert.equal(th.admit('10.0.0.1').admitted, true);
    for (let i = 0; i < 4; i++) th.schedule('10.0.0.1', true); // 100, 300, 700, 1100
    assert.deepEqual(th.admit('10.0.0.1'), { admitted: false, waitMs: 1100 });
    assert.equal(th.admit('10.0.0.2').admitted, true);
    c.advance(200);
    assert.equal(th.admit('10.0.0.1').admitted, true);
  });

  test('IPv6 addresses of one /64 share a counter; memory is bounded', () => {
    assert.equal(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:2:ffff:0:0:7'));
    assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 100, maxDelayMs: 1000, maxEntries: 100 }, c.now);
    for (let i = 0; i < 1000; i++) th.schedule(`10.0.${i >> 8}.${i & 255}`, true);
    assert.ok(th.size <= 100, `remembers ${th.size} addresses`);
    assert.equal(th.schedule('2001:db8:1:2::1', true), 100);
    assert.equal(th.schedule('2001:db8:1:2::99', true), 300, 'the same /64 is one address');
  });

  test('a base delay of 0 is off', () => {
    const th = new LoginThrottle({ baseDelayMs: 0, maxDelayMs: 0 });
    assert.equal(th.enabled, false);
    assert.equal(th.schedule('10.0.0.1', true), 0);
    assert.equal(th.admit('10.0.0.1').admitted, true);
  });
});
