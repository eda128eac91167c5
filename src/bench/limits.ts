/** What the host allows and what a process uses, read from /proc (Linux). */
import { readFileSync } from 'node:fs';

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
