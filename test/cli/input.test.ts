/**
 * The pieces behind `midge pub -l / -s` and the argument checks, without processes: the line splitter
 * (linear, bounded), reading all of stdin with a limit, the UTF-8 check of arguments, the option
 * parser's topic and port errors, and the helper that shortens echoed values.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { InputTooLongError, LineSplitter, MAX_PAYLOAD, readAll } from '../../src/cli/input.js';
import { malformedUtf8, rawArgs } from '../../src/cli/argv.js';
import { parseClientArgs } from '../../src/cli/client-options.js';
import { identityError } from '../../src/cli/client-connect.js';
import { fileErrorText, shorten, shortenPath } from '../../src/util/text.js';

function split(chunks: Array<string | Buffer>, maxLine?: number): { lines: string[]; ok: boolean[] } {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l.toString()), maxLine);
  const ok = chunks.map((c) => s.push(Buffer.from(c)));
  s.end();
  return { lines, ok };
}

describe('LineSplitter', () => {
  test('splits on \\n across chunk boundaries; empty lines are lines; a last line without \\n is one', () => {
    assert.deepEqual(split(['ab', 'c\nde', 'f\n\ng', 'h']).lines, ['abc', 'def', '', 'gh']);
    assert.deepEqual(split(['one\n']).lines, ['one']);
    assert.deepEqual(split(['\n']).lines, ['']);
    assert.deepEqual(split([]).lines, []);
  });

  test('a line of exactly maxLine bytes passes; one byte more is refused as soon as it is read', () => {
    assert.deepEqual(split(['12345\n'], 5), { lines: ['12345'], ok: [true] });
    assert.deepEqual(split(['123', '45', '\n'], 5), { lines: ['12345'], ok: [true, true, true] });
    // refused when the 6th byte arrives, before any '\n'
    assert.deepEqual(split(['123', '456'], 5).ok, [true, false]);
    assert.deepEqual(split(['ok\n123456\n'], 5), { lines: ['ok'], ok: [false] });
  });

  test('the default limit is the MQTT payload limit, 268435455 bytes', () => {
    assert.equal(MAX_PAYLOAD, 268_435_455);
    assert.equal(new LineSplitter(() => undefined).maxLine, MAX_PAYLOAD);
  });

  test('time is linear in the line length: 64 MB in 64 KB chunks with one \\n at the end', () => {
    const chunk = Buffer.alloc(64 * 1024, 0x78);
    let got = 0;
    const s = new LineSplitter((l) => { got = l.length; });
    const t0 = Math.round(performance.now());
    for (let i = 0; i < 1024; i++) assert.equal(s.push(chunk), true);
    s.push(Buffer.from('\n'));
    const took = Math.round(performance.now()) - t0;
    assert.equal(got, 64 * 1024 * 1024);
    // the quadratic version took about 19 s for 40 MB; this is a few hundred ms at most
    assert.ok(took < 5000, `took ${took} ms`);
  });
});

describe('readAll', () => {
  test('returns all of the stream', async () => {
    const s = new PassThrough();
    const p = readAll(s);
    s.write('ab');
    s.end('cd');
    assert.equal((await p).toString(), 'abcd');
  });

  test('stops with InputTooLongError once the input is longer than the limit, and closes the stream', async () => {
    const s = new PassThrough();
    const p = readAll(s, 5);
    s.write('123');
    s.write('456');
    await assert.rejects(p, (e: unknown) => e instanceof InputTooLongError && e.limit === 5);
    assert.equal(s.destroyed, true);
  });
});

describe('arguments that are not valid UTF-8', () => {
  test('with the bytes known, only an argument whose bytes are not its UTF-8 encoding is malformed', () => {
    assert.equal(malformedUtf8('a\uFFFD', Buffer.from([0x61, 0xff])), true);
    assert.equal(malformedUtf8('a\uFFFD', Buffer.from('a\uFFFD')), false); // a real U+FFFD (EF BF BD)
    assert.equal(malformedUtf8('abc', Buffer.from([0x61, 0xff])), false); // no U+FFFD: nothing to check
  });

  test('without the bytes (a command called from code, or no /proc), U+FFFD counts as malformed', () => {
    assert.equal(malformedUtf8('a\uFFFD', undefined), true);
    const r = parseClientArgs('pub', ['-t', 'a\uFFFD', '-m', 'x']);
    assert.deepEqual(r, { type: 'error', text: 'Error: Malformed UTF-8 in -t argument.\n\n' });
  });

  test('rawArgs reads nothing when no argument contains U+FFFD, and refuses arguments that are not ours', () => {
    assert.equal(rawArgs(['-t', 'a']), undefined);
    assert.equal(rawArgs(['-t', 'not-in-our-command-line-\uFFFD']), undefined);
  });

  test('every topic argument is checked, with mosquitto\'s words', () => {
    const cases: Array<[Parameters<typeof parseClientArgs>[0], string[], string]> = [
      ['pub', ['-t', 'a\uFFFD', '-m', 'x'], '-t'],
      ['pub', ['--topic', 'a\uFFFD', '-m', 'x'], '-t'],
      ['sub', ['-t', 'a\uFFFD'], '-t'],
      ['sub', ['-t', 'a', '-T', 'a\uFFFD'], '-T'],
      ['sub', ['-t', 'a', '-U', 'a\uFFFD'], '-U'],
      ['pub', ['-t', 'a', '-m', 'x', '--will-topic', 'w\uFFFD'], '--will-topic'],
      ['rr', ['-t', 'a', '-m', 'x', '-e', 'r\uFFFD'], '-e'],
      ['pub', ['-L', 'mqtt://localhost/a\uFFFD', '-m', 'x'], '-L topic'],
    ];
    for (const [kind, argv, flag] of cases) {
      assert.deepEqual(parseClientArgs(kind, argv), { type: 'error', text: `Error: Malformed UTF-8 in ${flag} argument.\n\n` }, argv.join(' '));
    }
  });

  test('-i, -I and -u are refused when the client is made, as mosquitto does', () => {
    const made = (kind: 'pub' | 'sub', argv: string[]): string | undefined => {
      const r = parseClientArgs(kind, argv);
      assert.equal(r.type, 'ok');
      return r.type === 'ok' ? identityError(r.config) : undefined;
    };
    assert.equal(made('pub', ['-t', 'a', '-m', 'x', '-i', 'a\uFFFD']), 'Error: Invalid id.\n');
    assert.equal(made('pub', ['-t', 'a', '-m', 'x', '-I', 'a\uFFFD']), 'Error: Invalid id.\n');
    assert.equal(made('pub', ['-t', 'a', '-m', 'x', '-i', '']), 'Error: Invalid id.\n');
    assert.equal(made('sub', ['-t', 'a', '-i', '']), 'Error: Invalid id and/or clean_session.\n');
    assert.equal(made('pub', ['-t', 'a', '-m', 'x', '-u', 'a\uFFFD']), 'Error: Problem setting username and/or password.\n');
    assert.equal(made('pub', ['-t', 'a', '-m', 'x', '-i', 'ok', '-u', 'ok', '-P', 'p\uFFFD']), undefined); // a password is bytes
  });
});

describe('topic and port errors say what is wrong', () => {
  const error = (kind: 'pub' | 'sub' | 'rr', argv: string[]): string => {
    const r = parseClientArgs(kind, argv);
    assert.equal(r.type, 'error', argv.join(' ').slice(0, 100));
    return r.type === 'error' ? r.text : '';
  };

  test('a topic over 65535 bytes: the real reason, and the topic cut to a readable length', () => {
    const long = 'a'.repeat(70_000);
    assert.equal(error('pub', ['-t', long, '-m', 'x']),
      `Error: Invalid publish topic '${'a'.repeat(100)}... (70000 bytes)': it is 70000 bytes long, and a topic can be at most 65535 bytes.\n`);
    for (const [kind, argv] of [
      ['sub', ['-t', long]], ['sub', ['-t', 'a', '-T', long]], ['sub', ['-t', 'a', '-U', long]],
      ['pub', ['-t', 'a', '-m', 'x', '--will-topic', long]], ['rr', ['-t', 'a', '-m', 'x', '-e', long]],
      ['pub', ['-t', `${long}/+`, '-m', 'x']],
    ] as const) {
      const text = error(kind, [...argv]);
      assert.match(text, /: it is 700\d\d bytes long, and a topic can be at most 65535 bytes\.\n$/);
      assert.ok(text.length < 300, `${text.length} characters`);
    }
    // multi-byte characters count as their UTF-8 bytes
    assert.match(error('pub', ['-t', 'é'.repeat(33_000), '-m', 'x']), /it is 66000 bytes long/);
  });

  test('too many levels says so; a misplaced wildcard keeps mosquitto\'s words', () => {
    assert.match(error('pub', ['-t', 'a/'.repeat(250) + 'a', '-m', 'x']), /': it has 251 levels, and midge \(like mosquitto\) allows at most 201\.\n$/);
    assert.equal(error('pub', ['-t', 'a/+', '-m', 'x']), "Error: Invalid publish topic 'a/+', does it contain '+' or '#'?\n");
    assert.equal(error('sub', ['-t', 'a/#/b']), "Error: Invalid subscription topic 'a/#/b', are all '+' and '#' wildcards correct?\n");
  });

  test('-p must be a number from 1 to 65535 (mosquitto takes "abc" and 0 as port 0 and fails to connect)', () => {
    assert.equal(error('pub', ['-t', 'a', '-m', 'x', '-p', 'abc']), 'Error: Invalid port given: abc\n');
    assert.equal(error('pub', ['-t', 'a', '-m', 'x', '-p', '0']), 'Error: Invalid port given: 0\n');
    assert.equal(error('sub', ['-t', 'a', '-p', '1x']), 'Error: Invalid port given: 1x\n');
    assert.equal(error('sub', ['-t', 'a', '-p', '70000']), 'Error: Invalid port given: 70000\n');
    assert.equal(error('pub', ['-L', 'mqtt://localhost:abc/t', '-m', 'x']), 'Error: Invalid port given: abc\n');
    assert.equal(error('pub', ['-t', 'a', '-m', 'x', '-p', 'x'.repeat(5000)]), `Error: Invalid port given: ${'x'.repeat(100)}... (5000 bytes)\n`);
    const ok = parseClientArgs('pub', ['-t', 'a', '-m', 'x', '-p', '1884']);
    assert.equal(ok.type === 'ok' && ok.config.port, 1884);
  });
});

describe('shorten', () => {
  test('keeps short values, cuts long ones to 100 characters plus their size in bytes', () => {
    assert.equal(shorten('abc'), 'abc');
    assert.equal(shorten('x'.repeat(100)), 'x'.repeat(100));
    assert.equal(shorten('x'.repeat(10 * 1024 * 1024)), `${'x'.repeat(100)}... (10485760 bytes)`);
    assert.equal(shorten('é'.repeat(200)), `${'é'.repeat(100)}... (400 bytes)`);
  });

  test('never cuts a surrogate pair in two', () => {
    const s = `${'x'.repeat(99)}${'😀'.repeat(10)}`;
    assert.equal(shorten(s), `${'x'.repeat(99)}... (${Buffer.byteLength(s)} bytes)`);
  });

  test('a path is cut only past 1024 characters', () => {
    const p = `/${'d/'.repeat(100)}file`;
    assert.equal(shortenPath(p), p);
    assert.match(shortenPath('/x'.repeat(1000)), /\.\.\. \(2000 bytes\)$/);
  });

  test('fileErrorText: words and the code', () => {
    assert.equal(fileErrorText(Object.assign(new Error('EISDIR: illegal operation on a directory, read'), { code: 'EISDIR' })), 'it is a directory (EISDIR)');
    assert.equal(fileErrorText(Object.assign(new Error('x'), { code: 'EWEIRD' })), 'EWEIRD');
  });
});
