/**
 * The abuse tier: each case (01-..., 02-...) starts its own `midge broker` process on a free port of
 * 127.0.0.1, abuses it over real sockets, bounded in count and time, and asserts that the process is
 * alive, that a bystander pair kept being served without losing a QoS 1 message, and a measured bound
 * on the broker's memory (printed as test diagnostics).
 *
 * The cases run one after the other in this one file: the test runner runs two files at a time on a
 * 2-core machine, and two abuse cases at once would each starve the other's broker.
 * MIDGE_ABUSE=01,04 runs only the cases whose names start so. The tier is about Midge's own process
 * (midge_* config keys, its inspector, its embedding API): MIDGE_TEST_BROKER does not apply to it.
 */
const CASES = [
  '01-slow-subscriber',
  '02-never-reads',
  '03-connection-churn',
  '04-retained-wildcard',
  '05-pre-connack-deadline',
  '06-fuzz',
  '07-sighup-reload',
];

const only = process.env.MIDGE_ABUSE?.split(',').map((s) => s.trim()).filter((s) => s !== '');
for (const name of CASES) {
  if (only === undefined || only.length === 0 || only.some((o) => name.startsWith(o))) await import(`./${name}.js`);
}
