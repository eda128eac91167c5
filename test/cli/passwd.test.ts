/**
 * `midge passwd`, run through the real CLI (node dist/src/cli/main.js passwd ...), compared with
 * Debian's mosquitto_passwd, and its files fed to Debian's mosquitto broker.
 */
import assert from 'node:assert/strict';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadPasswordFile, parsePasswordFile, verifyPassword } from '../../src/auth/password-file.js';
import {
  HAVE_MOSQUITTO,
  midgePasswd,
  MOSQUITTO_PUB,
  mosquittoPasswd,
  run,
  startMosquitto,
  tempDir,
  type RunResult,
} from '../auth/_helpers.js';

let dir: Awaited<ReturnType<typeof tempDir>>;
let n = 0;
/** A fresh file name in the test directory. */
const file = (name = 'pw'): string => join(dir.path, `${name}-${++n}`);

before(async () => { dir = await tempDir('midge-passwd-'); });
after(async () => { await dir.remove(); });

async function verifies(path: string, user: string, password: string): Promise<boolean> {
  const entry = (await loadPasswordFile(path)).users.get(user);
  return entry !== undefined && (await verifyPassword(entry, password));
}

function ok(r: RunResult): void {
  assert.equal(r.code, 0, `exit ${String(r.code)}: ${r.stderr}`);
}

describe('midge passwd: editing files', () => {
  test('-c -b creates a file of one $7$ line with mode 0600', async () => {
    const f = file();
    const r = await midgePasswd(['-c', '-b', f, 'alice', 'secret']);
    ok(r);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, '');
    const text = await readFile(f, 'utf8');
    assert.match(text, /^alice:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\n$/);
    assert.equal((await stat(f)).mode & 0o777, 0o600);
    assert.equal(await verifies(f, 'alice', 'secret'), true);
  });

  test('-c overwrites an existing file', async () => {
    const f = file();
    ok(await midgePasswd(['-c', '-b', f, 'alice', 'a']));
    ok(await midgePasswd(['-c', '-b', f, 'bob', 'b']));
    assert.deepEqual([...(await loadPasswordFile(f)).users.keys()], ['bob']);
  });

  test('-b adds a user at the end and leaves the other lines as they were', async () => {
    const f = file();
    ok(await midgePasswd(['-c', '-b', f, 'alice', 'a']));
    const before1 = await readFile(f, 'utf8');
    ok(await midgePasswd(['-b', f, 'bob', 'b']));
    const text = await readFile(f, 'utf8');
    assert.ok(text.startsWith(before1));
    assert.match(text.slice(before1.length), /^bob:\$7\$/);
    assert.equal(await verifies(f, 'bob', 'b'), true);
  });

  test('-b on an existing user changes its password in place, keeping order, comments and mode', async () => {
    const f = file();
    ok(await midgePasswd(['-c', '-b', f, 'alice', 'a']));
    ok(await midgePasswd(['-b', f, 'bob', 'b']));
    const original = await readFile(f, 'utf8');
    await writeFile(f, `# staff\n${original}`);
    await chmod(f, 0o640);
    ok(await midgePasswd(['-b', f, 'alice', 'new']));
    const lines = (await readFile(f, 'utf8')).split('\n');
    assert.equal(lines[0], '# staff');
    assert.match(lines[1] ?? '', /^alice:/);
    assert.equal(lines[2], original.split('\n')[1]); // bob untouched
    assert.equal(await verifies(f, 'alice', 'new'), true);
    assert.equal(await verifies(f, 'alice', 'a'), false);
    assert.equal((await stat(f)).mode & 0o777, 0o640);
  });

  test('-D deletes a user', async () => {
    const f = file();
    ok(await midgePasswd(['-c', '-b', f, 'alice', 'a']));
    ok(await midgePasswd(['-b', f, 'bob', 'b']));
    ok(await midgePasswd(['-D', f, 'alice']));
    assert.deepEqual([...(await loadPasswordFile(f)).users.keys()], ['bob']);
  });

  test('-U hashes plain-text lines, keeps comments and leaves hashed lines alone', async () => {
    const f = file();
    ok(await midgePasswd(['-c', '-b', f, 'hashed', 'h']));
    const hashedLine = (await readFile(f, 'utf8')).trimEnd();
    await writeFile(f, `# plain users\nu1:pw1\n\n${hashedLine}\nu2: pw 2 \n`);
    ok(await midgePasswd(['-U', f]));
    const text = await readFile(f, 'utf8');
    const lines = text.split('\n');
    assert.equal(lines[0], '# plain users');
    assert.equal(lines[2], '');
    assert.equal(lines[3], hashedLine);
    const { users, warnings } = parsePasswordFile(text, f);
    assert.deepEqual(warnings, []);
    assert.deepEqual([...users.keys()], ['u1', 'hashed', 'u2']);
    assert.equal(await verifyPassword(users.get('u1')!, 'pw1'), true);
    assert.equal(await verifyPassword(users.get('u2')!, 'pw 2'), true); // blanks trimmed, as mosquitto does
    assert.equal(await verifyPassword(users.get('hashed')!, 'h'), true);
  });

  test('-H sha512 writes a $6$ line and -I sets the iterations', async () => {
    const f = file();
    ok(await midgePasswd(['-H', 'sha512', '-c', '-b', f, 'old', 'o']));
    ok(await midgePasswd(['-I', '5', '-b', f, 'new', 'n']));
    const { users } = await loadPasswordFile(f);
    assert.equal(users.get('old')?.type, 'sha512');
    const e = users.get('new');
    assert.ok(e?.type === 'sha512-pbkdf2' && e.iterations === 5);
    assert.equal(await verifies(f, 'old', 'o'), true);
  });

  test('the password is read from stdin when it is not a terminal', async () => {
    const f = file();
    const r = await midgePasswd(['-c', f, 'carol'], { input: 'from stdin\nfrom stdin\n' });
    ok(r);
    assert.equal(r.stdout, 'Password: \nReenter password: \n');
    assert.equal(await verifies(f, 'carol', 'from stdin'), true);
    const r2 = await midgePasswd([f, 'dave'], { input: 'x\r\nx' }); // CRLF, and no final newline
    ok(r2);
    assert.equal(await verifies(f, 'dave', 'x'), true);
  });

  test('no temporary file is left behind', async () => {
    const sub = await tempDir('midge-passwd-tmp-');
    try {
      const f = join(sub.path, 'pw');
      ok(await midgePasswd(['-c', '-b', f, 'a', 'a']));
      ok(await midgePasswd(['-b', f, 'b', 'b']));
      ok(await midgePasswd(['-D', f, 'a']));
      assert.deepEqual(await readdir(sub.path), ['pw']);
    } finally {
      await sub.remove();
    }
  });

  test('a corrupt line stops the command and leaves the file untouched', async () => {
    const f = file();
    const text = 'alice:$6$SuSwnc03tHk9T4h/$7B0Ax/zt+rnfxZXpMb1n2dSWdlWbXTzEdLCP5Ts6G4zuMgyIpDJTqaQ8rgOnCJyNAQTxuFyMJH8a9yndX2JkdQ==\nbroken\n';
    await writeFile(f, text);
    const r = await midgePasswd(['-b', f, 'bob', 'b']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error: Corrupt password file at line 2.\n');
    assert.equal(await readFile(f, 'utf8'), text);
  });

  test('an empty username is refused', async () => {
    const r = await midgePasswd(['-c', '-b', file(), '', 'p']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error: Username must not be empty.\n');
  });

  test('--help prints the usage and exits 0', async () => {
    const r = await midgePasswd(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: midge passwd /m);
  });
});

describe('midge passwd: same messages and exit codes as mosquitto_passwd', { concurrency: 4, skip: !HAVE_MOSQUITTO && 'mosquitto not installed' }, () => {
  /** Runs both tools with the same arguments ({F} is a file holding one user, {M} a missing file). */
  async function both(args: string[], input?: string): Promise<[RunResult, RunResult]> {
    const make = async (): Promise<string[]> => {
      const f = file('cmp');
      ok(await mosquittoPasswd(['-c', '-b', f, 'alice', 'a']));
      return args.map((a) => a.replace('{F}', f).replace('{M}', join(dir.path, 'missing', 'pw')));
    };
    const [mineArgs, theirArgs] = await Promise.all([make(), make()]);
    return Promise.all([midgePasswd(mineArgs, { input }), mosquittoPasswd(theirArgs, { input })]);
  }

  /** Our usage text names midge, adds -I and a closing line; the usage and flag lines match otherwise. */
  const usageLines = (text: string): string[] =>
    text.replaceAll('mosquitto_passwd', 'midge passwd').split('\n').filter((l) => /^(Usage:| {7}midge| -[bcDHU] :| {6}Mosq)/.test(l));

  const cases: Array<[string, string[], string?]> = [
    ['no arguments', []],
    ['unknown flag', ['-x', '{F}', 'u']],
    ['too many arguments', ['{F}', 'u', 'p', 'q']],
    ['-b without a password', ['-b', '{F}', 'u']],
    ['missing file', ['-b', '{M}', 'u', 'p']],
    ['missing file with -D', ['-D', '{M}', 'alice']],
    ['missing file with -U', ['-U', '{M}']],
    ['-c in a missing directory', ['-c', '-b', '{M}', 'u', 'p']],
    ['-D of an unknown user', ['-D', '{F}', 'nobody']],
    [': in a username', ['-b', '{F}', 'a:b', 'p']],
    [': in a username to delete', ['-D', '{F}', 'a:b']],
    ['control character in a username', ['-b', '{F}', 'a\tb', 'p']],
    ['-c with -D', ['-c', '-D', '{F}', 'u']],
    ['-c with -U', ['-c', '-U', '{F}']],
    ['-D with -U', ['-D', '-U', '{F}', 'u']],
    ['-b with -D', ['-b', '-D', '{F}', 'u']],
    ['-c without a username', ['-c', '{F}']],
    ['-c -b without a password', ['-c', '-b', '{F}', 'u']],
    ['-D without a username', ['-D', '{F}']],
    ['-U with an extra argument', ['-U', '{F}', 'x']],
    ['-H without a value', ['-H']],
    ['-H with an unknown hash', ['-H', 'md5', '{F}', 'u']],
    ['-I without a value', ['-I']],
    ['-I 0', ['-I', '0', '-b', '{F}', 'u', 'p']],
    ['-I not a number', ['-I', 'abc', '-b', '{F}', 'u', 'p']],
    ['passwords differ at the prompt', ['{F}', 'bob'], 'one\ntwo\n'],
    ['passwords differ at the prompt with -c', ['-c', '{F}', 'bob'], 'one\ntwo\n'],
    ['empty password at the prompt', ['{F}', 'bob'], '\n'],
    ['empty second password at the prompt', ['{F}', 'bob'], 'x\n'],
    ['end of input at the prompt', ['{F}', 'bob'], ''],
  ];
  for (const [name, args, input] of cases) {
    test(name, async () => {
      const [mine, theirs] = await both(args, input);
      assert.equal(mine.code, theirs.code, 'exit code');
      assert.equal(mine.stderr, theirs.stderr.replaceAll('mosquitto_passwd', 'midge passwd'), 'stderr');
      if (theirs.stdout.includes('Usage:')) assert.deepEqual(usageLines(mine.stdout), usageLines(theirs.stdout));
      else assert.equal(mine.stdout, theirs.stdout, 'stdout');
    });
  }

  test('a mismatch at the prompt is "Error: Passwords do not match." with exit 2 (as Debian 2.0.11 does)', async () => {
    const [mine] = await both(['{F}', 'bob'], 'one\ntwo\n');
    assert.equal(mine.stderr, 'Error: Passwords do not match.\n');
    assert.equal(mine.code, 2);
  });

  test('files are interchangeable: each tool updates the other one\'s file', async () => {
    const f = file();
    ok(await midgePasswd(['-c', '-b', f, 'alice', 'a']));
    ok(await mosquittoPasswd(['-b', f, 'bob', 'b']));
    ok(await midgePasswd(['-b', f, 'carol', 'c']));
    ok(await mosquittoPasswd(['-D', f, 'alice']));
    const { users } = await loadPasswordFile(f);
    assert.deepEqual([...users.keys()], ['bob', 'carol']);
    assert.equal(await verifyPassword(users.get('bob')!, 'b'), true);
    assert.equal(await verifyPassword(users.get('carol')!, 'c'), true);
  });
});

describe('midge passwd: files accepted by Debian mosquitto', { skip: !HAVE_MOSQUITTO && 'mosquitto not installed' }, () => {
  let broker: Awaited<ReturnType<typeof startMosquitto>> | undefined;
  const pub = (user: string, password: string): Promise<RunResult> =>
    run(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(broker?.port), '-u', user, '-P', password, '-t', 't', '-m', 'x']);

  before(async () => {
    const f = file('broker');
    ok(await midgePasswd(['-c', '-b', f, 'alice', 'wonderland']));
    ok(await midgePasswd(['-H', 'sha512', '-b', f, 'old', 'timer']));
    ok(await midgePasswd(['-I', '1000', '-b', f, 'slow', 'and steady']));
    broker = await startMosquitto(dir.path, ['allow_anonymous false', `password_file ${f}`]);
  });
  after(async () => { await broker?.stop(); });

  test('the right password connects ($7$, $6$ and $7$ with 1000 iterations)', async () => {
    ok(await pub('alice', 'wonderland'));
    ok(await pub('old', 'timer'));
    ok(await pub('slow', 'and steady'));
  });

  test('a wrong password or an unknown user is refused', async () => {
    assert.notEqual((await pub('alice', 'Wonderland')).code, 0);
    assert.notEqual((await pub('old', 'time')).code, 0);
    assert.notEqual((await pub('mallory', 'wonderland')).code, 0);
    assert.match(broker?.log() ?? '', /not authorised/);
  });
});
