/**
 * `-D command property value` of midge pub/sub/rr against mosquitto 2.0.11's tools: every command ×
 * property pair and the bad values give the same message and exit code. The parser is compared in
 * process for the full matrix (mosquitto's tool is run for each pair, against a closed port), and a
 * table of edge cases runs both binaries side by side.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { parseClientArgs, usageHint, type ClientKind } from '../../src/cli/client-options.js';
import { freePort } from '../helpers/ports.js';
import { midge } from '../client/_helpers.js';

const PROPERTIES: Record<string, string[]> = {
  'payload-format-indicator': ['1'], 'message-expiry-interval': ['1'], 'content-type': ['x'], 'response-topic': ['x'],
  'correlation-data': ['x'], 'subscription-identifier': ['1'], 'session-expiry-interval': ['1'], 'assigned-client-identifier': ['x'],
  'server-keep-alive': ['1'], 'authentication-method': ['x'], 'authentication-data': ['x'], 'request-problem-information': ['1'],
  'will-delay-interval': ['1'], 'request-response-information': ['1'], 'response-information': ['x'], 'server-reference': ['x'],
  'reason-string': ['x'], 'receive-maximum': ['1'], 'topic-alias-maximum': ['1'], 'topic-alias': ['1'], 'maximum-qos': ['1'],
  'retain-available': ['1'], 'user-property': ['k', 'v'], 'maximum-packet-size': ['1'], 'wildcard-subscription-available': ['1'],
  'subscription-identifier-available': ['1'], 'shared-subscription-available': ['1'],
};
const COMMANDS = ['auth', 'connack', 'connect', 'disconnect', 'pingreq', 'pingresp', 'puback', 'pubcomp', 'publish', 'pubrec',
  'pubrel', 'suback', 'subscribe', 'unsuback', 'unsubscribe', 'will'];

/** stdout, stderr and exit code of mosquitto_<tool> (bounded, killed by PID) */
function mosquitto(tool: ClientKind, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(`mosquitto_${tool}`, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
    p.once('error', (e) => { clearTimeout(timer); reject(e); });
    p.once('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr: stderr.replaceAll(`mosquitto_${tool}`, `midge ${tool}`) }); });
  });
}

/** What midge's parser makes of the arguments: mosquitto's texts, or 'connects' when they are accepted. */
function parsed(tool: ClientKind, args: string[]): string {
  const r = parseClientArgs(tool, args);
  if (r.type === 'error') return r.text + usageHint(`midge ${tool}`);
  if (r.type !== 'ok') return r.type;
  if (tool === 'rr' && r.config.props.publish.responseTopic !== undefined) return 'Error in PUBLISH properties: Duplicate response topic.\n';
  return 'connects';
}

async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < items.length) await work(items[next++]!); }));
}

describe('-D against mosquitto 2.0.11', () => {
  for (const tool of ['pub', 'sub', 'rr'] as const) {
    test(`every command and property name gives mosquitto_${tool}'s answer (${COMMANDS.length} × ${Object.keys(PROPERTIES).length})`, async () => {
      const closed = String(await freePort());
      const base = tool === 'sub' ? ['-p', closed, '-t', 'a'] : tool === 'rr' ? ['-p', closed, '-t', 'a', '-e', 'b', '-m', 'c'] : ['-p', closed, '-t', 'a', '-m', 'b'];
      const cases = COMMANDS.flatMap((cmd) => Object.entries(PROPERTIES).map(([name, value]) => [...base, '-D', cmd, name, ...value]));
      const mismatches: string[] = [];
      await pool(cases, 8, async (args) => {
        const theirs = await mosquitto(tool, args);
        const expected = theirs.stderr === 'Error: Connection refused\n' ? 'connects' : theirs.stderr;
        assert.equal(theirs.code, 1);
        const ours = parsed(tool, args);
        if (ours !== expected) mismatches.push(`${args.slice(-4).join(' ')}: ours ${JSON.stringify(ours)} theirs ${JSON.stringify(expected)}`);
      });
      assert.deepEqual(mismatches, []);
    });
  }

  test('bad values, duplicates and the order of the checks give the same message and exit code from both binaries', async () => {
    const closed = String(await freePort());
    const P = ['-p', closed, '-t', 'a', '-m', 'b'];
    const S = ['-p', closed, '-t', 'a'];
    const R = ['-p', closed, '-t', 'a', '-e', 'b', '-m', 'c'];
    const D = (...a: string[]): string[] => ['-D', ...a];
    const cases: Array<[ClientKind, string[]]> = [
      ['pub', [...P, ...D('PUBLISH', 'Content-Type', 'x')]], ['pub', [...P, ...D('publish', 'payload-format-indicator', '-1')]],
      ['pub', [...P, ...D('publish', 'payload-format-indicator', '1x')]], ['pub', [...P, ...D('publish', 'message-expiry-interval', '4294967296')]],
      ['pub', [...P, ...D('publish', 'message-expiry-interval', '99999999999999999999')]], ['pub', [...P, ...D('publish', 'message-expiry-interval', 'abc')]],
      ['pub', [...P, ...D('connect', 'receive-maximum', '0')]], ['pub', [...P, ...D('connect', 'receive-maximum', '65536')]],
      ['pub', [...P, ...D('publish', 'topic-alias', '0')]], ['pub', [...P, ...D('connect', 'maximum-packet-size', '0')]],
      ['pub', [...P, ...D('connect', 'request-problem-information', '2')]], ['pub', [...P, ...D('connect', 'request-response-information', '2')]],
      ['pub', [...P, ...D('publish', 'content-type', 'x'), ...D('publish', 'content-type', 'y')]],
      ['pub', [...P, '-x', '5', ...D('connect', 'session-expiry-interval', '6')]], ['pub', [...P, ...D('connect', 'session-expiry-interval', '6'), '-x', '5']],
      ['pub', [...P, '-c', '-i', 'x', ...D('connect', 'session-expiry-interval', '5')]], ['pub', [...P, '-x', '0', ...D('connect', 'session-expiry-interval', '5')]],
      ['pub', [...P, ...D('will', 'content-type', 'a'), ...D('will', 'content-type', 'a'), ...D('disconnect', 'reason-string', 'a'), ...D('disconnect', 'reason-string', 'b'), ...D('publish', 'topic-alias', '0')]],
      ['pub', [...P, ...D('will', 'content-type', 'a'), ...D('will', 'content-type', 'a'), ...D('disconnect', 'reason-string', 'a'), ...D('disconnect', 'reason-string', 'b')]],
      ['pub', [...P, ...D('publish', 'content-type', 'a\x01')]], ['pub', [...P, ...D('publish', 'content-type', 'a\x7f')]],
      ['pub', [...P, ...D('publish', 'content-type', '\ufdd0')]], ['pub', [...P, ...D('publish', 'user-property', 'k\x02', 'v')]],
      ['pub', [...P, ...D('publish', 'correlation-data', 'a'.repeat(65536))]], ['pub', [...P, ...D('publish', 'user-property', 'k', 'v'), ...D('publish', 'user-property', 'k', 'v')]],
      ['pub', [...P, ...D('publish', 'user-property', 'k')]], ['pub', [...P, ...D('publish', 'content-type')]], ['pub', [...P, '-D']],
      ['pub', [...P, ...D('connect', 'receive-maximum', '0'), '-V', '311']], ['pub', ['-p', closed, ...D('connect', 'receive-maximum', '0')]],
      ['pub', [...P, '--will-payload', 'x', ...D('connect', 'receive-maximum', '0')]], ['pub', [...P, '-c', ...D('connect', 'receive-maximum', '0')]],
      ['sub', [...S, ...D('subscribe', 'subscription-identifier', '268435456')]], ['sub', [...S, ...D('subscribe', 'subscription-identifier', '-1')]],
      ['sub', ['-p', closed, ...D('connect', 'receive-maximum', '0')]],
      ['sub', [...S, ...D('subscribe', 'subscription-identifier', '1'), ...D('subscribe', 'subscription-identifier', '1'), ...D('publish', 'topic-alias', '0')]],
      ['rr', [...R, ...D('publish', 'response-topic', 'x')]], ['rr', [...R, ...D('publish', 'response-topic', 'x'), '-V', '311']],
      ['rr', ['-p', closed, ...D('connect', 'receive-maximum', '0')]], ['rr', [...R, ...D('connect', 'receive-maximum', '0'), ...D('publish', 'response-topic', 'x')]],
    ];
    const mismatches: string[] = [];
    await pool(cases, 4, async ([tool, args]) => {
      const [ours, theirs] = await Promise.all([midge([tool, ...args]), mosquitto(tool, args)]);
      if (JSON.stringify([ours.code, ours.stdout, ours.stderr]) !== JSON.stringify([theirs.code, theirs.stdout, theirs.stderr])) {
        mismatches.push(`${tool} ${JSON.stringify(args.slice(4)).slice(0, 120)}: ours ${JSON.stringify([ours.code, ours.stderr])} theirs ${JSON.stringify([theirs.code, theirs.stderr])}`);
      }
    });
    assert.deepEqual(mismatches, []);
  });
});
