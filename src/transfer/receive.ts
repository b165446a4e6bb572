import type { Readable } from 'node:stream';
import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';

// Constant script; the only values from outside travel as positional parameters
// ($1 dir, $2 temporary file, $3 expected sha256 or empty, $4 final file), so nothing
// user-controlled is ever parsed by the remote shell. The file is hashed while it arrives
// (tee | hash: a second core hashes as the first writes) instead of being read back
// afterwards. `openssl dgst` is preferred over coreutils' sha256sum: it uses the CPU's SHA
// instructions (1.1 GB/s vs 0.35 GB/s measured on the bed, where sha256sum capped the
// whole transfer); sha256sum stays the fallback. `wc -c` then proves the file holds every
// byte that was hashed (tee goes on feeding the hash when its file write fails). The
// rename happens in the same command: every extra SSH exec costs a remote shell start.
const RECEIVE =
  'umask 077 && mkdir -p -- "$1" && chmod 700 -- "$1" && ' +
  'if command -v openssl >/dev/null 2>&1; then ferry_hash() { openssl dgst -sha256 -r; }; else ferry_hash() { sha256sum; }; fi && ' +
  'h=$(tee -- "$2" | ferry_hash) && n=$(wc -c < "$2") && h=${h%% *} && echo "$h $n" && ' +
  'if [ -z "$3" ] || [ "$h" = "$3" ]; then mv -f -- "$2" "$4" && echo moved; fi';

export interface Received {
  sha256: string;
  bytes: number;
  /** Whether the receiver gave the file its final name. */
  moved: boolean;
  /** Why the receiving file is short, when the remote side said so (e.g. a full disk). */
  writeError?: string;
}

/**
 * Streams `input` over one exec channel of the kept-warm SSH connection (no SFTP, no
 * second connection) into `part` on the host `runner` reaches, and renames it to `final`
 * there: only when its hash equals `expectSha256` if that is given, unconditionally when
 * it is not known yet (a stream whose hash is known only at its end; the caller then
 * compares and removes a bad file: restore checks the hash again before using it).
 */
export async function receiveRemote(
  runner: CommandRunner,
  dir: string,
  paths: { part: string; final: string; expectSha256?: string },
  input: Readable,
  timeoutMs: number,
): Promise<Received> {
  const argv = ['sh', '-c', RECEIVE, 'ferry-receive', dir, paths.part, paths.expectSha256 ?? '', paths.final];
  const res = await runner.run(argv, { stdin: input, timeoutMs });
  if (res.code !== 0) throw new CommandError(runner.where, argv, res.code, res.stderr);
  // Found by shape, not position: a host's shell start-up files may print first.
  const lines = res.stdout.split('\n').map((l) => l.trim());
  const hashLine = lines.find((l) => /^[0-9a-f]{64} \d+$/.test(l)) ?? '';
  const [sha256 = '', bytes = ''] = hashLine.split(' ');
  // tee keeps feeding the hash when its file write fails, and sh has no pipefail: its
  // complaint on stderr is how a full disk is told from corruption in transit.
  const writeError = /No space left on device|Disk quota exceeded|Read-only file system/.exec(res.stderr)?.[0];
  return { sha256, bytes: Number(bytes), moved: lines.includes('moved'), writeError };
}
