/**
 * The admin API lists the bridges (issue 13 with issue 14's HTTP listener): GET /api/v1/bridges; and
 * /metrics has the bridge gauges and counters (midge_bridge_*{bridge}).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startMidge, stopAllBrokers } from '../helpers/broker-process.js';
import { freePort } from '../helpers/ports.js';
import { killAll } from '../helpers/proc.js';
import { request, scrape, startHttpBroker } from '../http/_util.js';
import { publish, subscribe, until } from './_helpers.js';

after(async () => {
  await stopAllBrokers();
  await killAll();
});

describe('admin API: bridges', { timeout: 60_000 }, () => {
  test('GET /api/v1/bridges: a connected bridge with its address and counts, a bridge to a closed port not connected; listed in the OpenAPI document', async () => {
    const remote = await startMidge({ verbose: true });
    const rsub = await subscribe(remote, ['api/#'], { qos: 1 });
    const closed = await freePort();
    const local = await startHttpBroker([
      'listener {port} 127.0.0.1', 'http_listener 0',
      'connection up', `address 127.0.0.1:${remote.port}`, 'remote_clientid api-up', 'topic api/# out 1',
      'connection down', `address 127.0.0.1:${closed}`, 'remote_clientid api-down', 'topic never/# out 1', 'restart_timeout 30',
    ], true);
    const bridges = async (): Promise<Array<Record<string, unknown>>> => {
      const r = await request(`${local.http}/api/v1/bridges`);
      assert.equal(r.status, 200, r.text);
      return r.json.items as Array<Record<string, unknown>>;
    };
    await until('bridge up', 10_000, async () => (await bridges()).find((b) => b.name === 'up')?.state === 'connected');
    await publish(local, 'api/1', 'one');
    assert.deepEqual(await rsub.waitForLines(1, 5000), ['1 0 api/1 one']);
    await until('counted', 5000, async () => (await bridges()).find((b) => b.name === 'up')?.messagesOut === 1);
    const list = await bridges();
    const up = list.find((b) => b.name === 'up')!;
    assert.equal(up.address, `127.0.0.1:${remote.port}`);
    assert.ok((up.connects as number) >= 1);
    const down = list.find((b) => b.name === 'down');
    assert.ok(down !== undefined, 'the second bridge is listed');
    assert.notEqual(down.state, 'connected');
    assert.equal(down.address, `127.0.0.1:${closed}`);
    const spec = await request(`${local.http}/api/v1/openapi.json`);
    assert.ok('/api/v1/bridges' in spec.json.paths);
    // the same figures on /metrics (Prometheus text, parsed), one series per bridge
    const m = await scrape(local.http);
    assert.equal(m.types.get('midge_bridge_up'), 'gauge');
    assert.equal(m.types.get('midge_bridge_messages_sent_total'), 'counter');
    assert.equal(m.get('midge_bridge_up', { bridge: 'up' }), 1);
    assert.equal(m.get('midge_bridge_up', { bridge: 'down' }), 0);
    assert.equal(m.get('midge_bridge_messages_sent_total', { bridge: 'up' }), 1);
    assert.equal(m.get('midge_bridge_messages_sent_total', { bridge: 'down' }), 0);
    assert.equal(m.get('midge_bridge_messages_received_total', { bridge: 'up' }), 0);
    assert.equal(m.get('midge_bridge_messages_dropped_total', { bridge: 'up' }), 0);
    assert.equal(m.get('midge_bridge_connects_total', { bridge: 'up' }), up.connects);
    assert.equal(m.get('midge_bridge_connects_total', { bridge: 'down' }), 0);
    assert.equal(m.samples.filter((x) => x.name === 'midge_bridge_up').length, 2, 'one series per bridge, no others');
    rsub.kill();
  });

  test('/metrics of a broker without bridges has the bridge families with no series', async () => {
    const b = await startHttpBroker(['listener {port} 127.0.0.1', 'http_listener 0'], true);
    const m = await scrape(b.http);
    assert.equal(m.types.get('midge_bridge_up'), 'gauge');
    assert.equal(m.samples.filter((x) => x.name.startsWith('midge_bridge_')).length, 0);
  });
});
