import type { Readable } from 'node:stream';
import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';

// Constant script; the only values from outside travel as positional parameters
// ($1 dir, $2 temporary file, $3 expected sha256 or empty, $4 final file, $5 "tee" or not),
// so nothing user-controlled is ever parsed by the remote shell. Two ways to hash:
// - "tee": while the bytes arrive (tee | hash). For the checkpoint stream, which arrives as
//   fast as CRIU dumps: the hash is done when the stream ends, nothing is added to the
//   downtime.
// - otherwise: write, then hash the file from the page cache. For the transfer step's bulk
//   copy this is faster (1 GiB on the bed: 3.2-3.4 s vs 4.1-8.3 s with tee, whose small
//   buffers and extra pipe compete for the cores sshd needs), and it hashes what is on disk.
// `openssl dgst` is preferred over coreutils' sha256sum: it uses the CPU's SHA instructions
// (1.1 GB/s vs 0.35 GB/s measured on the bed); sha256sum stays the fallback. A failed write
// (full disk) leaves a short file and a complaint on stderr, how a full disk is told from
// corruption; the input is still read to its end so the sender is never left blocked.
// The rename happens in the same command: every SSH exec costs a remote shell start.
const RECEIVE =
  'umask 077 && mkdir -p -- "$1" && chmod 700 -- "$1" && ' +
  'if command -v openssl >/dev/null 2>&1; then ferry_hash() { openssl dgst -sha256 -r; }; else ferry_hash() { sha256sum; }; fi && ' +
  'if [ "$5" = tee ]; then h=$(tee -- "$2" | ferry_hash); else { cat > "$2" || cat > /dev/null; } && h=$(ferry_hash < "$2"); fi && ' +
  'n=$(wc -c < "$2") && h=${h%% *} && echo "$h $n" && ' +
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
  paths: { part: string; final: string; expectSha256?: string; hashWhileArriving?: boolean },
  input: Readable,
  timeoutMs: number,
): Promise<Received> {
  const argv = ['sh', '-c', RECEIVE, 'ferry-receive', dir, paths.part, paths.expectSha256 ?? '', paths.final, paths.hashWhileArriving ? 'tee' : 'after'];
  const res = await runner.run(argv, { stdin: input, timeoutMs });
  if (res.code !== 0) throw new CommandError(runner.where, argv, res.code, res.stderr);
  // Found by shape, not position: a host's shell start-up files may print first.
  const lines = res.stdout.split('\n').map((l) => l.trim());
  const hashLine = lines.find((l) => /^[0-9a-f]{64} \d+$/.test(l)) ?? '';
  const [sha256 = '', bytes = ''] = hashLine.split(' ');
  // A failed write leaves a short file and tee's or cat's complaint on stderr (sh has no
  // pipefail): how a full disk is told from corruption in transit.
  const writeError = /No space left on device|Disk quota exceeded|Read-only file system/.exec(res.stderr)?.[0];
  return { sha256, bytes: Number(bytes), moved: lines.includes('moved'), writeError };
}
