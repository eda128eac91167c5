/** What the host allows and what a process uses, read from /proc (Linux). */
import { readdirSync, readFileSync } from 'node:fs';

/** The soft and hard limits on open files of this process (Infinity when unlimited or unknown). */
export function openFileLimit(): { soft: number; hard: number } {
  try {
    const text = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(text);
    if (m !== null) {
      const v = (s: string): number => (s === 'unlimited' ? Infinity : Number(s));
      return { soft: v(m[1]!), hard: v(m[2]!) };
    }
  } catch {
    // not Linux
  }
  return { soft: Infinity, hard: Infinity };
}

/** A field of /proc/PID/status in KiB (VmRSS, VmHWM, ...); 0 when the process is gone. */
export function statusKb(pid: number, field: string): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text);
    return m !== null ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const CLK_TCK = 100;

/** CPU seconds (utime + stime) the process has used; 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields after "pid (comm) ": state is index 0, utime is field 14 overall -> index 11
    return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by every process of the host, by PID (to see other load during a run). */
export function allProcessCpu(): Map<number, number> {
  const out = new Map<number, number>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    const s = cpuSeconds(pid);
    if (s > 0) out.set(pid, s);
  }
  return out;
}

/** CPU seconds used between two samples by processes other than `exclude` (processes alive at both). */
export function otherCpuSeconds(before: Map<number, number>, after: Map<number, number>, exclude: number[]): number {
  let sum = 0;
  for (const [pid, s] of after) {
    if (exclude.includes(pid)) continue;
    const b = before.get(pid);
    if (b !== undefined) sum += s - b;
  }
  return Math.round(sum * 100) / 100;
}
