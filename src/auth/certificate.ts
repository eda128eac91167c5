/**
 * The username a TLS listener takes from a verified client certificate, as mosquitto computes it:
 *
 * - `use_identity_as_username`: the value of the first commonName (CN) of the subject. mosquitto refuses
 *   a certificate without a CN, or with a NUL inside it.
 * - `use_subject_as_username`: the whole subject, printed as OpenSSL's `X509_NAME_print_ex(...,
 *   XN_FLAG_RFC2253)` prints it (what `openssl x509 -noout -subject -nameopt RFC2253` shows): the RDNs in
 *   reverse order separated by `,`, the members of a multi-valued RDN by `+`, RFC 2253 escapes, and
 *   every byte of a non-ASCII character as `\XX`. For example `CN=client1,O=Midge\, Inc.,C=GB`.
 */
import type { X509Certificate } from 'node:crypto';

/**
 * Converts Node's multi-line subject (`X509Certificate#subject`: one RDN a line in certificate order,
 * members of a multi-valued RDN joined by ` + `, values with RFC 2253 and control-character escapes)
 * into mosquitto's RFC 2253 form.
 */
export function subjectToRfc2253(nodeSubject: string): string {
  const rdns = nodeSubject.split('\n').filter((l) => l !== '').map((l) => l.split(' + '));
  // XN_FLAG_DN_REV reverses the list of entries, so the members of one RDN come out reversed too
  return rdns.reverse().map((members) => members.reverse().join('+')).join(',').replace(/[^\x00-\x7f]/gu, escapeUtf8);
}

function escapeUtf8(ch: string): string {
  let out = '';
  for (const b of Buffer.from(ch, 'utf8')) out += `\\${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** The first CN of a certificate's subject, or undefined when there is none (or it contains a NUL). */
export function commonName(subject: Readonly<Record<string, string | string[] | undefined>> | undefined): string | undefined {
  const cn = subject?.CN;
  const first = Array.isArray(cn) ? cn[0] : cn;
  if (first === undefined || first.includes('\u0000')) return undefined;
  return first;
}

/** mosquitto's subject username for a certificate. */
export function subjectOf(cert: X509Certificate): string {
  return subjectToRfc2253(cert.subject);
}
