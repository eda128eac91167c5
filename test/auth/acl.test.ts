import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  AclParseError,
  filterCovers,
  filterMatches,
  intersectFilters,
  isValidFilter,
  parseAcl,
  parseAclFile,
  type Acl,
} from '../../src/auth/acl.js';
import { tempDir } from './_helpers.js';

type Op = 'read' | 'write' | 'sub';
/** [client id, username (undefined = anonymous), operation, topic or filter, expected] */
type Row = readonly [string, string | undefined, Op, string, boolean];

function check(acl: Acl, rows: readonly Row[]): void {
  for (const [clientId, username, op, topic, expected] of rows) {
    const got = op === 'read' ? acl.canRead(clientId, username, topic)
      : op === 'write' ? acl.canWrite(clientId, username, topic)
        : acl.canSubscribe(clientId, username, topic);
    assert.equal(got, expected, `${op} ${topic} as ${username ?? '(anonymous)'}/${clientId}`);
  }
}

describe('filterMatches', () => {
  const rows: Array<[string, string, boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/+', 'a/', true], // + matches an empty level
    ['a/#', 'a', true], // # matches the parent level
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['#', 'a/b', true],
    ['#', '/a', true],
    ['+/+', '/a', true],
    ['+', '$SYS', false],
    ['#', '$SYS/broker/uptime', false],
    ['+/broker/uptime', '$SYS/broker/uptime', false],
    ['$SYS/#', '$SYS/broker/uptime', true],
    ['$SYS/+/uptime', '$SYS/broker/uptime', true],
    ['a/b', 'a/+', false], // a topic name never holds a wildcard
  ];
  for (const [filter, topic, expected] of rows) {
    test(`${filter} ${expected ? 'matches' : 'does not match'} ${topic}`, () => {
      assert.equal(filterMatches(filter, topic), expected);
    });
  }
});

describe('filter helpers', () => {
  test('isValidFilter', () => {
    for (const f of ['#', '+', 'a/+/b', 'a/#', '/', 'a//b', '$SYS/#', 'a b/c']) assert.equal(isValidFilter(f), true, f);
    for (const f of ['', 'a/#/b', 'a#', 'a/b+', '#/a', '++', 'a\u0000b']) assert.equal(isValidFilter(f), false, f);
  });

  test('intersectFilters gives the filter of the topics both match', () => {
    const rows: Array<[string, string, string | undefined]> = [
      ['a/#', 'a/b', 'a/b'],
      ['a/#', 'a', 'a'],
      ['#', 'x/+', 'x/+'],
      ['a/+', '+/b', 'a/b'],
      ['a/+', 'a/b/c', undefined],
      ['a/b', 'a/c', undefined],
      ['+/#', '#', '+/#'],
      ['#', '$SYS/#', undefined],
      ['+/x', '$SYS/x', undefined],
      ['$SYS/#', '$SYS/broker/+', '$SYS/broker/+'],
    ];
    for (const [a, b, expected] of rows) {
      assert.equal(intersectFilters(a, b), expected, `${a} ∩ ${b}`);
      assert.equal(intersectFilters(b, a), expected, `${b} ∩ ${a}`);
    }
  });

  test('filterCovers says whether every topic of the inner filter matches the outer one', () => {
    const rows: Array<[string, string, boolean]> = [
      ['a/#', 'a/b/+', true],
      ['a/#', 'a', true],
      ['a/+', 'a/#', false], // a/# also matches "a" and deeper topics
      ['a/+', 'a/b', true],
      ['a/b', 'a/+', false],
      ['#', '$SYS/#', false],
      ['$SYS/#', '$SYS/x', true],
      ['+/+', '+/b', true],
      ['a/b', 'a/b/c', false],
    ];
    for (const [outer, inner, expected] of rows) assert.equal(filterCovers(outer, inner), expected, `${outer} ⊇ ${inner}`);
  });
});

describe('Acl: topic rules per user and for anonymous clients', () => {
  const acl = parseAcl(`
# anonymous clients: the rules before any user line
topic read public/#
topic write anon/in

user alice
topic readwrite alice/#
topic deny alice/secret
topic read shared/+/status
topic write shared/cmd
topic read $SYS/broker/clients/#

user bob
topic bob/#
topic deny bob/private/#

user alice
topic read extra/alice
`, 'acl');

  test('a user gets its own section, and its later sections too', () => check(acl, [
    ['c', 'alice', 'read', 'alice/x', true],
    ['c', 'alice', 'write', 'alice/x', true],
    ['c', 'alice', 'read', 'alice', true],
    ['c', 'alice', 'read', 'shared/a/status', true],
    ['c', 'alice', 'write', 'shared/a/status', false],
    ['c', 'alice', 'write', 'shared/cmd', true],
    ['c', 'alice', 'read', 'shared/cmd', false],
    ['c', 'alice', 'read', 'extra/alice', true],
    ['c', 'alice', 'write', 'extra/alice', false],
    ['c', 'alice', 'read', 'bob/x', false],
    ['c', 'alice', 'read', 'public/news', false], // anonymous rules are not for users
  ]));

  test('default access is readwrite', () => check(acl, [
    ['c', 'bob', 'read', 'bob/x', true],
    ['c', 'bob', 'write', 'bob/x', true],
  ]));

  test('deny wins over an allow, before or after it in the section', () => check(acl, [
    ['c', 'alice', 'read', 'alice/secret', false],
    ['c', 'alice', 'write', 'alice/secret', false],
    ['c', 'alice', 'read', 'alice/secret/deeper', true], // deny alice/secret does not cover deeper levels
    ['c', 'bob', 'read', 'bob/private', false],
    ['c', 'bob', 'write', 'bob/private/x', false],
    ['c', 'bob', 'write', 'bob/public', true],
  ]));

  test('anonymous clients get the rules at the top only', () => check(acl, [
    ['c', undefined, 'read', 'public/news', true],
    ['c', undefined, 'write', 'public/news', false],
    ['c', undefined, 'write', 'anon/in', true],
    ['c', undefined, 'read', 'anon/in', false],
    ['c', undefined, 'read', 'alice/x', false],
  ]));

  test('a user without a section and no patterns gets nothing', () => check(acl, [
    ['c', 'carol', 'read', 'public/news', false],
    ['c', 'carol', 'write', 'anything', false],
    ['c', '', 'read', 'public/news', false], // an empty username is a username, not anonymous
  ]));

  test('$SYS: read needs a rule naming $SYS, and writing is refused even with a rule', () => check(acl, [
    ['c', 'alice', 'read', '$SYS/broker/clients/connected', true],
    ['c', 'alice', 'read', '$SYS/broker/uptime', false],
    ['c', 'alice', 'write', '$SYS/broker/clients/connected', false],
  ]));

  test('subscriptions: allowed when the filter can reach a readable topic', () => check(acl, [
    ['c', 'alice', 'sub', 'alice/#', true],
    ['c', 'alice', 'sub', 'alice/+', true],
    ['c', 'alice', 'sub', 'alice/x', true],
    ['c', 'alice', 'sub', '#', true],
    ['c', 'alice', 'sub', '+/+/status', true],
    ['c', 'alice', 'sub', 'alice/secret', false], // wholly inside a deny
    ['c', 'alice', 'sub', '+/secret', false], // only overlap with an allow is alice/secret, denied
    ['c', 'alice', 'sub', 'shared/cmd', false], // write-only
    ['c', 'alice', 'sub', 'bob/#', false],
    ['c', 'alice', 'sub', '$SYS/#', true],
    ['c', 'alice', 'sub', '$SYS/broker/uptime', false],
    ['c', 'alice', 'sub', '$share/group/alice/#', true],
    ['c', 'alice', 'sub', '$share/group/bob/#', false],
    ['c', 'alice', 'sub', 'alice/#/x', false], // not a valid filter
    ['c', 'bob', 'sub', 'bob/private/#', false],
    ['c', 'bob', 'sub', 'bob/+/x', true],
    ['c', undefined, 'sub', 'public/+', true],
    ['c', undefined, 'sub', '#', true],
    ['c', undefined, 'sub', 'anon/in', false],
    ['c', 'carol', 'sub', '#', false],
  ]));
});

describe('Acl: patterns with %c and %u', () => {
  const acl = parseAcl(`
topic read public/#
user alice
topic read users/alice/blocked
pattern readwrite devices/%c/#
pattern deny devices/%c/locked
pattern read users/%u/inbox
pattern write users/%u/outbox/%c
pattern deny users/%u/blocked
`, 'acl');

  test('%c is the client id and %u the username', () => check(acl, [
    ['dev1', 'carol', 'write', 'devices/dev1/temp', true],
    ['dev1', 'carol', 'read', 'devices/dev1/temp', true],
    ['dev1', 'carol', 'write', 'devices/dev2/temp', false],
    ['dev1', 'carol', 'read', 'users/carol/inbox', true],
    ['dev1', 'carol', 'write', 'users/carol/inbox', false],
    ['dev1', 'carol', 'read', 'users/dave/inbox', false],
    ['dev1', 'carol', 'write', 'users/carol/outbox/dev1', true],
    ['dev2', 'carol', 'write', 'users/carol/outbox/dev1', false],
  ]));

  test('a deny pattern wins over an allow pattern', () => check(acl, [
    ['dev1', 'carol', 'write', 'devices/dev1/locked', false],
    ['dev1', 'carol', 'read', 'devices/dev1/locked', false],
    ['dev1', 'carol', 'read', 'users/carol/blocked', false],
  ]));

  test('a rule in the user\'s own section is checked before the patterns (mosquitto order)', () => check(acl, [
    ['x', 'alice', 'read', 'users/alice/blocked', true],
    ['x', 'alice', 'read', 'users/alice/inbox', true], // users with a section still get patterns
  ]));

  test('anonymous clients get %c patterns but never %u ones', () => check(acl, [
    ['dev1', undefined, 'write', 'devices/dev1/x', true],
    ['dev1', undefined, 'read', 'public/x', true],
    ['dev1', undefined, 'read', 'users//inbox', false],
    ['dev1', undefined, 'read', 'users/%u/inbox', false],
  ]));

  test('a client id or username with + or # gets nothing from patterns', () => check(acl, [
    ['dev#', 'carol', 'read', 'users/carol/inbox', false],
    ['dev1', 'car+ol', 'read', 'devices/dev1/x', false],
    ['dev#', undefined, 'read', 'public/x', true], // the client's own rules still apply
  ]));

  test('subscriptions through patterns', () => check(acl, [
    ['dev1', 'carol', 'sub', 'devices/dev1/#', true],
    ['dev1', 'carol', 'sub', 'devices/+/temp', true],
    ['dev1', 'carol', 'sub', 'devices/dev1/locked', false],
    ['dev1', 'carol', 'sub', 'devices/dev2/#', false],
    ['dev1', 'carol', 'sub', 'users/carol/outbox/dev1', false], // write-only
    ['dev1', 'carol', 'sub', 'users/+/inbox', true],
    ['dev#', 'carol', 'sub', 'users/+/inbox', false],
  ]));
});

describe('Acl: $SYS, $share and empty files', () => {
  test('# does not reach $SYS; a $SYS rule does, and writes to $SYS stay refused', () => {
    const acl = parseAcl('user admin\ntopic readwrite #\ntopic readwrite $SYS/#\nuser ops\ntopic #\n', 'acl');
    check(acl, [
      ['c', 'ops', 'read', 'a/b', true],
      ['c', 'ops', 'read', '$SYS/broker/uptime', false],
      ['c', 'ops', 'sub', '$SYS/#', false],
      ['c', 'ops', 'sub', '#', true],
      ['c', 'admin', 'read', '$SYS/broker/uptime', true],
      ['c', 'admin', 'sub', '$SYS/broker/+', true],
      ['c', 'admin', 'write', '$SYS/broker/uptime', false],
      ['c', 'admin', 'write', '$SYS/broker/connection/bridge1/state', true], // a bridge's status topic
      ['c', 'ops', 'write', '$SYS/broker/connection/bridge1/state', false],
      ['c', 'admin', 'write', '$share/g/t', false],
      ['c', 'admin', 'read', '$share/g/t', false],
    ]);
  });

  test('an ACL with no rules refuses everything', () => {
    const acl = parseAcl('# nothing here\n\n', 'acl');
    check(acl, [
      ['c', undefined, 'read', 'a', false],
      ['c', 'alice', 'write', 'a', false],
      ['c', 'alice', 'sub', '#', false],
    ]);
  });

  test('a topic may contain spaces; access words are only read, write, readwrite and deny', () => {
    const acl = parseAcl('topic read some topic/with space\ntopic  write   spaced\n', 'acl');
    check(acl, [
      ['c', undefined, 'read', 'some topic/with space', true],
      ['c', undefined, 'write', 'some topic/with space', false],
      ['c', undefined, 'write', 'spaced', true],
    ]);
    assert.deepEqual(acl.rules.map((r) => [r.kind, r.access, r.topic, r.user, r.line]), [
      ['topic', 'read', 'some topic/with space', undefined, 1],
      ['topic', 'write', 'spaced', undefined, 2],
    ]);
  });
});

describe('parseAcl errors name the file and line', () => {
  const rows: Array<[string, string, number, RegExp]> = [
    ['topic without a filter', 'user a\ntopic\n', 2, /empty topic after "topic"/],
    ['pattern without a filter', 'pattern   \n', 1, /empty topic after "pattern"/],
    ['unknown access', '# c\n\ntopic readonly a/b\n', 3, /invalid access type "readonly"/],
    ['user without a name', 'topic a\nuser\n', 2, /missing username/],
    ['invalid filter', 'pattern read a/#/%c\n', 1, /invalid topic filter "a\/#\/%c"/],
    ['unknown keyword', 'topic a\ntopics read b\n', 2, /invalid line: .*found "topics"/],
  ];
  for (const [name, text, line, reason] of rows) {
    test(name, () => {
      assert.throws(() => parseAcl(text, '/etc/midge/acl'), (err: unknown) => {
        assert.ok(err instanceof AclParseError);
        assert.equal(err.file, '/etc/midge/acl');
        assert.equal(err.line, line);
        assert.match(err.reason, reason);
        assert.ok(err.message.startsWith(`/etc/midge/acl:${line}: `));
        return true;
      });
    });
  }

  test('parseAclFile reads a file and names its path in errors', async () => {
    const dir = await tempDir();
    try {
      const good = join(dir.path, 'good.acl');
      await writeFile(good, 'user u\r\ntopic read a/#\r\n');
      const acl = await parseAclFile(good);
      assert.equal(acl.canRead('c', 'u', 'a/b'), true);
      const bad = join(dir.path, 'bad.acl');
      await writeFile(bad, 'user u\nbogus\n');
      await assert.rejects(parseAclFile(bad), (err: unknown) => err instanceof AclParseError && err.file === bad && err.line === 2);
    } finally {
      await dir.remove();
    }
  });
});
