/**
 * A throw-away PKI made with the openssl command at test time: a CA, a server certificate for
 * localhost / 127.0.0.1, client certificates (good, expired, revoked, signed by another CA) and a CRL,
 * plus a password file made with mosquitto_passwd. Files are world-readable so that Debian's mosquitto
 * (which drops to the mosquitto user when started as root) can read them too.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../helpers/proc.js';

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** subject C=GB, O=Midge, Inc., CN=client1 */
  clientCert: string;
  clientKey: string;
  /** mosquitto's use_subject_as_username for clientCert */
  clientSubject: string;
  expiredCert: string;
  expiredKey: string;
  revokedCert: string;
  revokedKey: string;
  /** CN=client1, signed by a CA the broker does not trust */
  untrustedCert: string;
  untrustedKey: string;
  /** a CRL from the CA that revokes revokedCert */
  crl: string;
  /** two CRLs in one file: the other CA's (empty), then `crl` */
  crls: string;
  /** mosquitto_passwd file with mqtt:test (the walkthrough's user) */
  passwd: string;
  /** a second server certificate from the same CA (for reload tests), CN=localhost, serial differs */
  serverCert2: string;
  serverKey2: string;
  remove(): void;
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 15_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${String(r.code)}): ${r.stderr}`);
  return r.stdout;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export async function makePki(): Promise<Pki> {
  const dir = mkdtempSync(join(tmpdir(), 'midge-pki-'));
  const p = (name: string): string => join(dir, name);
  const selfSigned = (name: string, cn: string): Promise<string> =>
    sh('openssl', ['req', '-x509', ...EC, '-keyout', p(`${name}.key`), '-out', p(`${name}.crt`), '-days', '2', '-subj', `/CN=${cn}`]);
  const issue = async (name: string, subj: string, ca: string, days: string, ext?: string): Promise<void> => {
    await sh('openssl', ['req', ...EC, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subj]);
    const args = ['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${ca}.crt`), '-CAkey', p(`${ca}.key`),
      '-CAcreateserial', '-out', p(`${name}.crt`), '-days', days];
    if (ext !== undefined) {
      writeFileSync(p(`${name}.ext`), ext);
      args.push('-extfile', p(`${name}.ext`));
    }
    await sh('openssl', args);
  };
  await Promise.all([selfSigned('ca', 'Midge Test CA'), selfSigned('ca2', 'Untrusted CA')]);
  const san = 'subjectAltName=DNS:localhost,IP:127.0.0.1\n';
  // one at a time per CA: -CAcreateserial writes the CA's serial file
  await issue('server', '/CN=localhost', 'ca', '2', san);
  await issue('server2', '/CN=localhost', 'ca', '2', san);
  await issue('client', '/C=GB/O=Midge, Inc./CN=client1', 'ca', '2');
  await issue('expired', '/CN=expired', 'ca', '-1');
  await issue('revoked', '/CN=revoked', 'ca', '2');
  await issue('untrusted', '/CN=client1', 'ca2', '2');
  writeFileSync(p('index.txt'), '');
  writeFileSync(p('crlnumber'), '01\n');
  writeFileSync(p('ca.cnf'), `[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = ${p('index.txt')}\n`
    + `crlnumber = ${p('crlnumber')}\ndefault_md = sha256\ndefault_crl_days = 30\n`);
  const caArgs = ['-config', p('ca.cnf'), '-keyfile', p('ca.key'), '-cert', p('ca.crt')];
  await sh('openssl', ['ca', ...caArgs, '-revoke', p('revoked.crt')]);
  await sh('openssl', ['ca', ...caArgs, '-gencrl', '-out', p('crl.pem')]);
  // an empty CRL from the other CA, and a file with both CRLs, the other CA's first
  writeFileSync(p('index2.txt'), '');
  writeFileSync(p('crlnumber2'), '01\n');
  writeFileSync(p('ca2.cnf'), `[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = ${p('index2.txt')}\n`
    + `crlnumber = ${p('crlnumber2')}\ndefault_md = sha256\ndefault_crl_days = 30\n`);
  await sh('openssl', ['ca', '-config', p('ca2.cnf'), '-keyfile', p('ca2.key'), '-cert', p('ca2.crt'), '-gencrl', '-out', p('crl2.pem')]);
  writeFileSync(p('crls.pem'), Buffer.concat([readFileSync(p('crl2.pem')), readFileSync(p('crl.pem'))]));
  await sh('mosquitto_passwd', ['-c', '-b', p('passwd'), 'mqtt', 'test']);
  chmodSync(dir, 0o755);
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
  return {
    dir,
    ca: p('ca.crt'),
    serverCert: p('server.crt'), serverKey: p('server.key'),
    serverCert2: p('server2.crt'), serverKey2: p('server2.key'),
    clientCert: p('client.crt'), clientKey: p('client.key'),
    clientSubject: 'CN=client1,O=Midge\\, Inc.,C=GB',
    expiredCert: p('expired.crt'), expiredKey: p('expired.key'),
    revokedCert: p('revoked.crt'), revokedKey: p('revoked.key'),
    untrustedCert: p('untrusted.crt'), untrustedKey: p('untrusted.key'),
    crl: p('crl.pem'),
    crls: p('crls.pem'),
    passwd: p('passwd'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The TLS lines of a listener (S10's config). */
export function tlsLines(pki: Pki, extra: string[] = []): string[] {
  return [`cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, ...extra];
}
