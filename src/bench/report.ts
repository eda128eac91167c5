/** Human-readable output of `midge bench`: the progress line and the summary. */
import type { BenchResult, Progress } from './coordinator.js';
import type { LatencySummary } from './histogram.js';
import type { RetainedResult } from './retained.js';

const nf = new Intl.NumberFormat('en-US');
const n = (v: number): string => nf.format(v);

export function progressLine(p: Progress): string {
  const parts = [`[${String(p.elapsedS).padStart(3)}s ${p.phase.padEnd(7)}]`];
  if (p.sentPerS > 0 || p.phase !== 'hold') parts.push(`sent ${n(p.sentPerS)}/s`);
  if (p.receivedPerS > 0 || p.phase !== 'hold') parts.push(`recv ${n(p.receivedPerS)}/s`);
  if (p.ackedPerS > 0) parts.push(`acked ${n(p.ackedPerS)}/s`);
  parts.push(`lost ${n(p.lost)}`, `errors ${n(p.errors)}`, `cpu ${p.cpuPct}%`);
  return parts.join('  ');
}

function lat(l: LatencySummary): string {
  if (l.n === 0) return 'none';
  return `p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  p99.9 ${l.p999}  max ${l.max}  (µs, ${n(l.n)} samples)`;
}

export function summary(r: BenchResult & { retained?: RetainedResult }): string {
  const out: string[] = [];
  const load = r.rate > 0 ? `${n(r.rate)} msgs/s` : 'flood';
  if (r.conns !== undefined) {
    const k = r.conns;
    out.push(`midge bench conn: ${n(k.attempted)} connections to ${r.host}:${r.port}, ${r.workers} worker(s)`);
    if (k.capNote !== undefined) out.push(`  note: ${k.capNote}`);
    out.push(`  connected     ${n(k.connected)} (failed ${n(k.failed)}) in ${k.connectSeconds} s: ${n(k.connectsPerS)} connects/s`);
    out.push(`  handshake     ${lat(k.connectUs)}`);
    out.push(`  after ${k.holdS} s    ${n(k.openAfterHold)} open, ${n(k.droppedDuringHold)} dropped`);
  } else if (r.retained !== undefined) {
    const k = r.retained;
    out.push(`midge bench run --retained: ${n(k.stored)} retained messages of ${r.size} B, ${r.pubs} publisher(s), one '#' subscriber, QoS ${r.qos}`);
    out.push(`  stored        in ${k.storeSeconds} s (${n(k.storedPerS)} msgs/s, QoS 1 acknowledged)`);
    out.push(`  received      ${n(k.received)} of ${n(k.stored)} in ${k.burstSeconds} s: ${n(r.msgsPerS)} msgs/s (first after ${k.firstMs} ms)`);
    out.push(`  arrival       ${lat(r.latencyUs)} after SUBSCRIBE`);
    out.push(`  cleared       ${k.cleared ? 'yes' : 'no'}`);
  } else if (r.offline !== undefined) {
    const k = r.offline;
    out.push(`midge bench run --offline: ${n(r.pubs)} pub × ${n(r.subs)} persistent sub, ${n(r.topics)} topic(s)${r.wildcard ? ' (subscribers on /#)' : ''}, QoS ${r.qos}, ${r.size} B, inflight ${r.inflight}; ${r.subHost !== r.host || r.subPort !== r.port ? `publishers ${r.host}:${r.port}, subscribers ${r.subHost}:${r.subPort}` : `${r.host}:${r.port}`}`);
    out.push(`  published     ${n(k.published)}, acknowledged ${n(k.acked)} in ${k.publishSeconds} s: ${n(k.publishPerS)} msgs/s   PUBACK ${lat(r.ackLatencyUs)}`);
    out.push(`  reconnected   ${k.sessionPresent} of ${r.subs} with the session present`);
    out.push(`  drained       ${n(k.received)} of ${n(k.expected)} in ${k.drainSeconds} s (from the reconnect): ${n(k.drainPerS)} msgs/s`);
    out.push(`  lost (gaps)   ${n(r.lost)}   dups ${n(r.dups)}   missing at end ${n(r.missing)}${r.foreign > 0 ? `   unstamped ${n(r.foreign)}` : ''}`);
  } else {
    const who = r.mode === 'run'
      ? `${n(r.pubs)} pub × ${n(r.subs)} sub, ${n(r.topics)} topic(s)${r.wildcard ? ' (subscribers on /#)' : ''}`
      : r.mode === 'pub' ? `${n(r.pubs)} publisher(s), ${n(r.topics)} topic(s)` : `${n(r.subs)} subscriber(s)`;
    const extra = [r.window > 0 ? `window ${n(r.window)}` : '', r.qos > 0 ? `inflight ${r.inflight}` : ''].filter((s) => s !== '').join(', ');
    const what = r.mode === 'sub' ? `QoS ${r.qos} subscription` : `QoS ${r.qos}, ${r.size} B, ${load}${extra !== '' ? `, ${extra}` : ''}`;
    const at = (host: string, port: number | number[]): string => {
      const ps = Array.isArray(port) ? port.join(',') : String(port);
      return r.transport === 'ws' ? `ws://${host}:${ps}/mqtt` : `${host}:${ps}`;
    };
    const split = r.subHost !== r.host || r.subPort !== r.port || r.subPorts !== undefined;
    out.push(`midge bench ${r.mode}: ${who}, ${what}; ${split ? `publishers ${at(r.host, r.pubPorts ?? r.port)}, subscribers ${at(r.subHost, r.subPorts ?? r.subPort)}` : at(r.host, r.pubPorts ?? r.port)}`);
    out.push(`  ${r.durationS} s measured after ${r.warmupS} s warmup, ${r.workers} worker(s); setup ${r.setup.seconds} s`
      + ` (${r.setup.subsReady} subs, ${r.setup.pubsReady} pubs ready; ${r.setup.subsFailed + r.setup.pubsFailed} failed)`);
    if (r.pubs > 0) out.push(`  sent          ${n(r.sent)} (${n(r.sentPerS)} msgs/s)`);
    if (r.qos > 0 && r.pubs > 0) out.push(`  acked         ${n(r.acked)} (${n(r.ackedPerS)} msgs/s)   PUBACK ${lat(r.ackLatencyUs)}`);
    if (r.subs > 0) {
      out.push(`  received      ${n(r.received)} (${n(r.msgsPerS)} msgs/s)`);
      out.push(`  latency       ${lat(r.latencyUs)}`);
      out.push(`  lost (gaps)   ${n(r.lost)}   dups ${n(r.dups)}${r.mode === 'run' ? `   missing at end ${n(r.missing)} of ${n(r.expectedDeliveries)}` : ''}`
        + `${r.foreign > 0 ? `   unstamped ${n(r.foreign)}` : ''}`);
    }
    if (r.rateSkipped > 0) out.push(`  rate skipped  ${n(r.rateSkipped)} (the publishers fell behind the rate)`);
  }
  out.push(`  generator CPU ${r.cpu.windowS > 0 ? `${r.cpu.windowPct}% of one core in the window, ` : ''}${r.cpu.totalS} s in all (user ${r.cpu.userS}, system ${r.cpu.systemS})`);
  if (r.errors.total > 0) {
    const detail = Object.entries(r.errors).filter(([k, v]) => k !== 'total' && k !== 'last' && v !== 0).map(([k, v]) => `${k} ${v}`).join(', ');
    out.push(`  errors        ${n(r.errors.total)} (${detail}); last: ${r.errors.last}`);
  }
  if (r.timedOut) out.push('  TIMED OUT: the run was cut at its deadline');
  return out.join('\n');
}
