import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  checkPassword,
  hashPassword,
  loadPasswordFile,
  parseHash,
  parsePasswordFile,
  PasswordFileError,
  PasswordHashError,
  serialize,
  verifyPassword,
  type PasswordEntry,
} from '../../src/auth/password-file.js';
import { HAVE_MOSQUITTO, mosquittoPasswd, tempDir } from './_helpers.js';

// Written by Debian's mosquitto_passwd 2.0.11: `-b f user pass` and `-H sha512 -b f u6 pass`.
const DEBIAN_7 = '$7$101$pMxIy689ehHJwr4T$9gggBuvILATVbnHfWmHLCBrHPvsBlnDcQy2u4R1qmGnYp8KmYS+eO7z+il5dkvZ1//U7n13w6l+zhztDS7/i0Q==';
const DEBIAN_6 = '$6$SuSwnc03tHk9T4h/$7B0Ax/zt+rnfxZXpMb1n2dSWdlWbXTzEdLCP5Ts6G4zuMgyIpDJTqaQ8rgOnCJyNAQTxuFyMJH8a9yndX2JkdQ==';

describe('hashPassword and verifyPassword', () => {
  test('a $7$ hash has the layout mosquitto_passwd writes: 101 iterations, 16-char salt, 88-char hash', async () => {
    const h = await hashPassword('secret');
    assert.match(h, /^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$/);
  });

  test('our $7$ hash verifies with the right password only', async () => {
    const h = await hashPassword('secret');
    assert.equal(await verifyPassword(h, 'secret'), true);
    assert.equal(await verifyPassword(h, 'Secret'), false);
    assert.equal(await verifyPassword(h, ''), false);
  });

  test('a fixed salt gives the same bytes as mosquitto_passwd for the same salt', async () => {
    const salt = Buffer.from('pMxIy689ehHJwr4T', 'base64');
    assert.equal(await hashPassword('pass', { salt }), DEBIAN_7);
    assert.equal(await hashPassword('pass', { salt: Buffer.from('SuSwnc03tHk9T4h/', 'base64'), type: 'sha512' }), DEBIAN_6);
  });

  test('iterations are written into the hash and used to verify', async () => {
    const h = await hashPassword('pw', { iterations: 7 });
    assert.match(h, /^\$7\$7\$/);
    assert.equal(await verifyPassword(h, 'pw'), true);
    await assert.rejects(hashPassword('pw', { iterations: 0 }), RangeError);
  });

  test('passwords are bytes: a Buffer and the same UTF-8 string verify alike', async () => {
    const h = await hashPassword('pässwörd');
    assert.equal(await verifyPassword(h, Buffer.from('pässwörd', 'utf8')), true);
  });

  test('recorded Debian lines verify: $7$ (pbkdf2) and $6$ (sha512)', async () => {
    assert.equal(await verifyPassword(DEBIAN_7, 'pass'), true);
    assert.equal(await verifyPassword(DEBIAN_7, 'pas'), false);
    assert.equal(await verifyPassword(DEBIAN_6, 'pass'), true);
    assert.equal(await verifyPassword(DEBIAN_6, 'passs'), false);
  });

  test('a malformed hash never verifies', async () => {
    assert.equal(await verifyPassword('$7$101$short$short', 'x'), false);
    assert.equal(await verifyPassword('plain', 'plain'), false);
  });

  test('checkPassword: known user with right and wrong password, unknown user', async () => {
    const users = new Map<string, PasswordEntry>([['alice', parseHash(await hashPassword('a'))]]);
    assert.equal(await checkPassword(users, 'alice', 'a'), true);
    assert.equal(await checkPassword(users, 'alice', 'b'), false);
    assert.equal(await checkPassword(users, 'bob', 'a'), false);
  });
});

describe('interop with Debian mosquitto_passwd', { skip: !HAVE_MOSQUITTO && 'mosquitto_passwd not installed' }, () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  before(async () => { dir = await tempDir(); });
  after(async () => { await dir.remove(); });

  test('a $7$ line made by mosquitto_passwd -b verifies with our code (right and wrong password)', async () => {
    const f = join(dir.path, 'pbkdf2');
    const r = await mosquittoPasswd(['-c', '-b', f, 'user', 'pass word']);
    assert.equal(r.code, 0, r.stderr);
    const { users, warnings } = await loadPasswordFile(f);
    assert.deepEqual(warnings, []);
    const entry = users.get('user');
    assert.ok(entry);
    assert.equal(entry.type, 'sha512-pbkdf2');
    assert.equal(await verifyPassword(entry, 'pass word'), true);
    assert.equal(await verifyPassword(entry, 'pass'), false);
  });

  test('a $6$ line made by mosquitto_passwd -H sha512 verifies (right and wrong password)', async () => {
    const f = join(dir.path, 'sha512');
    const r = await mosquittoPasswd(['-H', 'sha512', '-c', '-b', f, 'old', 's3cret']);
    assert.equal(r.code, 0, r.stderr);
    const { users } = await loadPasswordFile(f);
    const entry = users.get('old');
    assert.equal(entry?.type, 'sha512');
    assert.equal(await verifyPassword(entry!, 's3cret'), true);
    assert.equal(await verifyPassword(entry!, 's3cre'), false);
  });

  test('-I iterations from mosquitto_passwd are honoured', async () => {
    const f = join(dir.path, 'iter');
    assert.equal((await mosquittoPasswd(['-I', '3', '-c', '-b', f, 'u', 'p'])).code, 0);
    const entry = (await loadPasswordFile(f)).users.get('u');
    assert.ok(entry?.type === 'sha512-pbkdf2' && entry.iterations === 3);
    assert.equal(await verifyPassword(entry, 'p'), true);
  });

  test('serialize reproduces a mosquitto_passwd file byte for byte', async () => {
    const f = join(dir.path, 'multi');
    await mosquittoPasswd(['-c', '-b', f, 'zed', 'a']);
    await mosquittoPasswd(['-b', f, 'amy', 'b']);
    await mosquittoPasswd(['-H', 'sha512', '-b', f, 'max', 'c']);
    const text = await readFile(f, 'utf8');
    const { users } = parsePasswordFile(text, f);
    assert.deepEqual([...users.keys()], ['zed', 'amy', 'max']);
    assert.equal(serialize(users), text);
  });
});

describe('parsePasswordFile', () => {
  test('comments, blank lines, CRLF and blanks around fields are accepted', () => {
    const text = `# users\n\n  alice : ${DEBIAN_7} \r\n\t# indented comment\nbob:${DEBIAN_6}\n`;
    const { users, warnings } = parsePasswordFile(text, 'pw');
    assert.deepEqual([...users.keys()], ['alice', 'bob']);
    assert.equal(users.get('alice')?.encoded, DEBIAN_7);
    assert.deepEqual(warnings, []);
  });

  test('a plain-text entry is left out with a warning that names the line and never the password', () => {
    const { users, warnings } = parsePasswordFile(`alice:${DEBIAN_7}\nbob:hunter2\n`, 'pw');
    assert.deepEqual([...users.keys()], ['alice']);
    assert.equal(warnings.length, 1);
    assert.equal(warnings[0]?.file, 'pw');
    assert.equal(warnings[0]?.line, 2);
    assert.match(warnings[0]?.message ?? '', /plain-text password for user 'bob'/);
    assert.doesNotMatch(JSON.stringify(warnings), /hunter2/);
  });

  test('a user listed twice keeps the later entry and warns', () => {
    const { users, warnings } = parsePasswordFile(`u:${DEBIAN_6}\nv:${DEBIAN_6}\nu:${DEBIAN_7}\n`, 'pw');
    assert.equal(users.get('u')?.type, 'sha512-pbkdf2');
    assert.deepEqual([...users.keys()], ['v', 'u']);
    assert.deepEqual(warnings.map((w) => w.line), [3]);
  });

  const malformed: Array<[string, string, number, RegExp]> = [
    ['no colon', `alice:${DEBIAN_7}\njustaname\n`, 2, /expected 'username:hash'/],
    ['empty password', 'alice:\n', 1, /empty username or password/],
    ['empty username', `:${DEBIAN_7}\n`, 1, /empty username or password/],
    ['unknown hash type', '# x\nu:$5$abc$def\n', 2, /unsupported hash type \$5\$/],
    ['$7$ missing a field', 'u:$7$101$pMxIy689ehHJwr4T\n', 1, /expected \$7\$<iterations>/],
    ['$7$ zero iterations', `u:$7$0$pMxIy689ehHJwr4T$${DEBIAN_7.split('$')[4]}\n`, 1, /invalid iteration count '0'/],
    ['$7$ short salt', `u:$7$101$AAAA$${DEBIAN_7.split('$')[4]}\n`, 1, /salt is 3 bytes, expected 12/],
    ['$6$ bad base64 hash', 'u:$6$SuSwnc03tHk9T4h/$not*base64\n', 1, /hash is not valid base64/],
    ['$6$ with an extra field', `u:${DEBIAN_6}$x\n`, 1, /expected \$6\$<salt>\$<hash>/],
  ];
  for (const [name, text, line, reason] of malformed) {
    test(`malformed: ${name} -> PasswordFileError naming file and line ${line}`, () => {
      assert.throws(() => parsePasswordFile(text, '/etc/midge/pw'), (err: unknown) => {
        assert.ok(err instanceof PasswordFileError);
        assert.equal(err.file, '/etc/midge/pw');
        assert.equal(err.line, line);
        assert.match(err.reason, reason);
        assert.ok(err.message.startsWith(`/etc/midge/pw:${line}: `));
        return true;
      });
    });
  }

  test('parseHash throws PasswordHashError for text that is not a hash', () => {
    assert.throws(() => parseHash('hunter2'), PasswordHashError);
  });

  test('loadPasswordFile names the path in errors', async () => {
    const dir = await tempDir();
    try {
      const f = join(dir.path, 'bad');
      await writeFile(f, 'oops\n');
      await assert.rejects(loadPasswordFile(f), (err: unknown) => err instanceof PasswordFileError && err.file === f && err.line === 1);
    } finally {
      await dir.remove();
    }
  });

  test('serialize keeps map order and accepts encoded strings', () => {
    const users = new Map<string, PasswordEntry | string>([['b', DEBIAN_6], ['a', parseHash(DEBIAN_7)]]);
    assert.equal(serialize(users), `b:${DEBIAN_6}\na:${DEBIAN_7}\n`);
  });
});
