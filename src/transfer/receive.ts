import type { Readable } from 'node:stream';
import { CommandError } from '../errors';
import type { CommandRunner } from '../exec/runner';

// Constant script; the only values from outside travel as positional parameters
// ($1 dir, $2 temporary file, $3 expected sha256 or size or empty, $4 final file, $5 the
// check), so nothing user-controlled is ever parsed by the remote shell. Two checks:
// - "sha256": hashed while the bytes arrive (tee | hash), for the checkpoint stream, which
//   arrives as fast as CRIU dumps: the hash is ready when the stream ends, nothing is
//   added to the downtime. `openssl dgst` is preferred over coreutils' sha256sum: it uses
//   the CPU's SHA instructions (1.1 GB/s vs 0.35 GB/s measured on the bed).
// - "size": written, then its size compared, for the transfer step's bulk copy of an
//   archive whose hash the record already holds: restore verifies that hash on this host
//   before podman sees the file, so hashing here too only cost time (1 GiB on the bed:
//   3.8 s with a hash after writing, 4.1-8.3 s with tee, ~3.0 s without; SSH's own MAC
//   already guards the bytes on the wire).
// A failed write (full disk) leaves a short file and a complaint on stderr, how a full disk
// is told from corruption; the input is still read to its end so the sender is never left
// blocked. The rename happens in the same command: every SSH exec costs a shell start.
const RECEIVE =
  'umask 077 && { [ -d "$1" ] || mkdir -p -m 700 -- "$1"; } && ' +
  'case $(stat -c %a -- "$1") in 700) ;; *) echo "ferry: $1 is not private to Ferry (mode $(stat -c %a -- "$1")): archives are kept only in a folder of its own (0700)" >&2; exit 3;; esac && ' +
  'if [ "$5" = sha256 ]; then ' +
  'if command -v openssl >/dev/null 2>&1; then ferry_hash() { openssl dgst -sha256 -r; }; else ferry_hash() { sha256sum; }; fi && ' +
  'h=$(tee -- "$2" | ferry_hash) && h=${h%% *}; ' +
  'else { cat > "$2" || cat > /dev/null; } && h=size; fi && ' +
  'n=$(wc -c < "$2") && echo "$h $n" && ' +
  'if [ -z "$3" ] || [ "$h" = "$3" ] || [ "$h $n" = "size $3" ]; then mv -f -- "$2" "$4" && echo moved; fi';

export interface Received {
  /** What the receiver hashed ('' when it checked the size only). */
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
 * there: with `check.sha256`, only when the hash taken while it arrived equals it, or
 * unconditionally when it is '' (a stream whose hash is known only at its end; the caller
 * then compares and removes a bad file); with `check.bytes`, when the size matches
 * (restore checks the hash before using it).
 */
export async function receiveRemote(runner: CommandRunner, dir: string, paths: { part: string; final: string }, check: { sha256: string } | { bytes: number }, input: Readable, timeoutMs: number): Promise<Received> {
  const [mode, expect] = 'sha256' in check ? ['sha256', check.sha256] : ['size', String(check.bytes)];
  const argv = ['sh', '-c', RECEIVE, 'ferry-receive', dir, paths.part, expect, paths.final, mode];
  const res = await runner.run(argv, { stdin: input, timeoutMs });
  if (res.code !== 0) throw new CommandError(runner.where, argv, res.code, res.stderr);
  // Found by shape, not position: a host's shell start-up files may print first.
  const lines = res.stdout.split('\n').map((l) => l.trim());
  const resultLine = lines.find((l) => /^([0-9a-f]{64}|size) \d+$/.test(l)) ?? '';
  const [hash = '', bytes = ''] = resultLine.split(' ');
  // A failed write leaves a short file and tee's or cat's complaint on stderr (sh has no
  // pipefail): how a full disk is told from corruption in transit.
  const writeError = /No space left on device|Disk quota exceeded|Read-only file system/.exec(res.stderr)?.[0];
  return { sha256: hash === 'size' ? '' : hash, bytes: Number(bytes), moved: lines.includes('moved'), writeError };
}
