import { createHash } from 'node:crypto';
import type { CriuOperation } from './criuLog';

/**
 * CRIU options for one podman command, which neither podman 4.3 nor runc 1.1 has a flag for.
 *
 * runc takes the CRIU binary as a global flag (`runc --criu PATH`), and podman passes its own
 * `--runtime-flag criu=PATH` to every runtime call, existing containers included (checkpoint
 * directly, restore through conmon). CRIU reads the file named by CRIU_CONFIG_FILE in swrk mode
 * too, before runc's RPC settings, which set neither option below. So PATH is a small script
 * that names a config file and runs the real criu: the options apply to that one command, and
 * /etc/criu/runc.conf, which changes every checkpoint on the host, is never touched.
 */

/** Ferry's own folder for these scripts, on every host that checkpoints or restores. */
export const CRIU_WRAPPER_DIR = '/var/lib/ferry/criu';

export interface ConnectionSettings {
  /** Skip not-yet-accepted connections at checkpoint, and close established ones unless they are kept. */
  skipInFlight?: boolean;
  /** Established connections are dumped and restored (checkpoint.tcpEstablished). */
  tcpEstablished: boolean;
}

/**
 * CRIU config lines for a checkpoint or restore; empty when CRIU's defaults apply.
 *
 * - `skip-in-flight`: a connection the kernel completed but the service had not accepted yet
 *   made the dump fail, about every time under steady connection load. Skipped, its client sees
 *   a reset and connects again, as it would to any restarting service.
 * - `tcp-close` (when connections are not kept): an accepted connection a service is still
 *   serving at the freeze made the dump fail ("Connected TCP socket") about one time in five.
 *   CRIU then leaves it out of the dump instead, and the image requires `tcp-close` at restore,
 *   where CRIU restores it shut down.
 * - `network-lock skip` (with `tcp-close` only): CRIU otherwise drops every packet of the
 *   container's network namespace from the freeze on, the FIN of the connections it closes too,
 *   and their clients hang (measured: 20 s and more, until their own timeout). Nothing is kept
 *   that the lock would protect.
 */
export function criuConfigLines(op: CriuOperation, s: ConnectionSettings): string[] {
  if (!s.skipInFlight) return [];
  if (op === 'checkpoint') return s.tcpEstablished ? ['skip-in-flight'] : ['skip-in-flight', 'tcp-close', 'network-lock skip'];
  return s.tcpEstablished ? [] : ['tcp-close'];
}

export interface CriuWrapper {
  /** The script runc runs instead of criu; its name is derived from its content. */
  path: string;
  /** podman's global flags that make runc use it. */
  podmanFlags: string[];
  /** An argument vector that writes the script and its config file unless they are there already. */
  install: string[];
}

// Written once per content (the name is its hash), so an existing file is never rewritten under a
// running command; a temporary name and rename, so a concurrent migration never runs half a file.
const INSTALL = [
  'set -e',
  'umask 022',
  'd=$1 n=$2',
  '[ -x "$d/$n" ] && [ -f "$d/$n.conf" ] && exit 0',
  'mkdir -p "$d"',
  'printf "%s" "$3" > "$d/.$n.conf.$$"',
  'mv -f "$d/.$n.conf.$$" "$d/$n.conf"',
  'printf "%s" "$4" > "$d/.$n.$$"',
  'chmod 755 "$d/.$n.$$"',
  'mv -f "$d/.$n.$$" "$d/$n"',
].join('\n');

/** The wrapper for these config lines, or null when there are none (plain criu). */
export function criuWrapper(lines: readonly string[], dir = CRIU_WRAPPER_DIR): CriuWrapper | null {
  if (!lines.length) return null;
  const conf = `# Written by Ferry: CRIU options for the checkpoints and restores that name ${dir}/NAME.\n${lines.join('\n')}\n`;
  const name = `criu-${createHash('sha256').update(conf).digest('hex').slice(0, 12)}`;
  const path = `${dir}/${name}`;
  const script = [
    '#!/bin/sh',
    '# Written by Ferry: CRIU with the options of the file beside this one, for the podman commands that',
    '# name this script (podman --runtime-flag criu=...). runc runs it as `criu swrk FD`.',
    `CRIU_CONFIG_FILE=${path}.conf`,
    'export CRIU_CONFIG_FILE',
    'PATH=${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}',
    'export PATH',
    'exec criu "$@"',
    '',
  ].join('\n');
  return { path, podmanFlags: ['--runtime-flag', `criu=${path}`], install: ['sh', '-c', INSTALL, 'ferry-criu-wrapper', dir, name, conf, script] };
}
