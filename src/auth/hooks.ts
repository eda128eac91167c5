import type { BrokerHooks } from '../broker/types.js';
import type { Logger } from '../broker/log.js';
import { type Acl, parseAclFile } from './acl.js';
import { checkPassword, loadPasswordFile, type PasswordEntry } from './password-file.js';

export interface FileAuthOptions {
  allowAnonymous: boolean;
  passwordFile?: string;
  aclFile?: string;
  /** delay before answering a failed login, so a password file cannot be tried at line rate */
  failedLoginDelayMs?: number;
}

/**
 * Authentication and authorisation from mosquitto's password and ACL files, as broker hooks.
 * `reload()` re-reads both files (SIGHUP); a bad file leaves the old one in force.
 */
export class FileAuth {
  private users: ReadonlyMap<string, PasswordEntry> | undefined;
  private acl: Acl | undefined;

  constructor(private readonly opts: FileAuthOptions, private readonly log: Logger) {}

  async load(): Promise<void> {
    if (this.opts.passwordFile !== undefined) {
      const pf = await loadPasswordFile(this.opts.passwordFile);
      for (const w of pf.warnings) this.log.warning(`${w.file}:${w.line}: ${w.message}`);
      this.users = pf.users;
    }
    if (this.opts.aclFile !== undefined) this.acl = await parseAclFile(this.opts.aclFile);
  }

  /** Re-read the files; on an error keep what is loaded and report it. */
  async reload(): Promise<void> {
    const prevUsers = this.users;
    const prevAcl = this.acl;
    try {
      await this.load();
      this.log.info('Reloaded password and ACL files.');
    } catch (err) {
      this.users = prevUsers;
      this.acl = prevAcl;
      this.log.error(`reload failed, keeping the previous files: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  hooks(): BrokerHooks {
    const hooks: BrokerHooks = {
      authenticate: async (_client, username, password) => {
        let ok: boolean;
        if (username === undefined) ok = this.opts.allowAnonymous;
        else if (this.users === undefined) ok = this.opts.allowAnonymous || this.opts.passwordFile === undefined;
        else ok = password !== undefined && await checkPassword(this.users, username, password);
        if (!ok && this.opts.failedLoginDelayMs) await new Promise((r) => setTimeout(r, this.opts.failedLoginDelayMs));
        return { ok, returnCode: 5 };
      },
    };
    if (this.opts.aclFile !== undefined) {
      hooks.authorizePublish = (client, topic) => this.acl?.canWrite(client.id, client.username, topic) ?? false;
      hooks.authorizeSubscribe = (client, filter) => this.acl?.canSubscribe(client.id, client.username, filter) ?? false;
      hooks.authorizeRead = (session, msg) => this.acl?.canRead(session.clientId, session.username, msg.topic) ?? false;
    }
    return hooks;
  }
}
