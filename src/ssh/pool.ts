import type { FerryConfig } from '../config/load';
import { findHost } from '../config/load';
import { ValidationError } from '../errors';
import { SshRunner } from './sshRunner';

/** One kept-warm SSH connection per host, shared by all steps a worker runs. */
export class SshPool {
  private readonly runners = new Map<string, SshRunner>();
  private closed = false;

  constructor(private readonly config: FerryConfig) {}

  get(hostName: string): SshRunner {
    if (this.closed) throw new Error('SSH pool is closed');
    let r = this.runners.get(hostName);
    if (!r) {
      const host = findHost(this.config, hostName);
      if (!host) throw new ValidationError(`unknown host "${hostName}": not in the configured inventory`);
      r = new SshRunner(host, { connectTimeoutMs: this.config.timeouts.sshConnectMs });
      this.runners.set(hostName, r);
    }
    return r;
  }

  /** Safe to call twice. */
  close(): void {
    this.closed = true;
    for (const r of this.runners.values()) r.close();
    this.runners.clear();
  }
}
