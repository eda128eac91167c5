/**
 * The usernames taken from client certificates: `use_subject_as_username` must give exactly what
 * mosquitto gives (OpenSSL's RFC 2253 printing, checked against `openssl x509 -nameopt RFC2253`), and
 * `use_identity_as_username` the first CN.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { commonName, subjectOf, subjectToRfc2253 } from '../../src/auth/certificate.js';
import { run } from '../helpers/proc.js';

const dir = mkdtempSync(join(tmpdir(), 'midge-names-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function certWith(subj: string, multivalue = false): Promise<{ pem: Buffer; openssl: string }> {
  const base = join(dir, `c${++n}`);
  const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${base}.key`,
    '-out', `${base}.crt`, '-days', '1', '-utf8', '-subj', subj];
  if (multivalue) args.push('-multivalue-rdn');
  const made = await run('openssl', args, { timeoutMs: 10_000 });
  assert.equal(made.code, 0, made.stderr);
  const shown = await run('openssl', ['x509', '-in', `${base}.crt`, '-noout', '-subject', '-nameopt', 'RFC2253'], { timeoutMs: 10_000 });
  return { pem: readFileSync(`${base}.crt`), openssl: shown.stdout.replace(/\n$/, '').replace(/^subject=/, '') };
}

describe('use_subject_as_username: the subject as mosquitto prints it', () => {
  const subjects: Array<[string, string, boolean?]> = [
    ['the walkthrough-style client', '/C=GB/O=Midge, Inc./CN=client1'],
    ['RFC 2253 specials escaped, and a trailing space', '/CN=a\\,b\\+c"d\\\\e<f>g;h=i '],
    ['a leading space and a leading #', '/O= spaced/CN=#hash'],
    ['non-ASCII as UTF-8 bytes', '/O=Société Générale/CN=Zoë 日本'],
    ['email and domain components', '/DC=com/DC=example/emailAddress=a@example.com/CN=dc user'],
    ['a multi-valued RDN', '/O=Org+OU=Unit/CN=multi', true],
  ];
  for (const [what, subj, multi] of subjects) {
    test(`${what}: ${subj}`, async () => {
      const c = await certWith(subj, multi ?? false);
      assert.equal(subjectOf(new X509Certificate(c.pem)), c.openssl);
    });
  }

  test('the conversion from Node\'s multi-line form', () => {
    assert.equal(subjectToRfc2253('C=GB\nO=Midge\\, Inc.\nCN=client1'), 'CN=client1,O=Midge\\, Inc.,C=GB');
    assert.equal(subjectToRfc2253('C=GB\nOU=a + O=b\nCN=x'), 'CN=x,O=b+OU=a,C=GB');
    assert.equal(subjectToRfc2253('CN=é'), 'CN=\\C3\\A9');
  });
});

describe('use_identity_as_username: the first CN', () => {
  test('one CN, several CNs, none, and one with a NUL', () => {
    assert.equal(commonName({ CN: 'client1', O: 'x' }), 'client1');
    assert.equal(commonName({ CN: ['first', 'second'] }), 'first');
    assert.equal(commonName({ O: 'no cn' }), undefined);
    assert.equal(commonName({ CN: 'evil\u0000admin' }), undefined);
    assert.equal(commonName(undefined), undefined);
  });
});
