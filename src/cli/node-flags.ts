/**
 * The node flags the `midge` command runs with. They are in three places that must agree, and a test
 * (test/cli/node-flags.test.ts) holds them together: this list, the `#!` line of src/cli/main.ts (how
 * the installed `midge` bin starts) and `npm start`. bench/ and the tests start the broker with them too,
 * so what is measured is what ships.
 *
 * `--max-semi-space-size=2` (MiB): V8's young generation grows to 16 MiB per semi-space when many
 * objects survive, as they do when thousands of clients connect at once (each connection keeps its
 * socket and session). That growth is never handed back while connections stay open, and at 20,000
 * idle connections it was 0.9–1.2 KiB of RSS per connection (4.5 KiB with the default, 3.25 KiB with
 * 2 MiB, measured with the C load generator). 2 MiB keeps the cost of the smaller young generation on
 * message throughput within the run-to-run noise (1 MiB lost 20–30%). Embedders who start many
 * connections in their own process can pass the same flag to node.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
