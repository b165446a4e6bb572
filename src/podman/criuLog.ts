/**
 * CRIU's own account of a failed checkpoint or restore. podman only says "criu failed: type
 * NOTIFY errno 0" and where CRIU's log is (dump.log, restore.log in the container's userdata);
 * the cause is in that log. Pure: unit-tested on logs recorded on the test bed.
 */

export type CriuOperation = 'checkpoint' | 'restore';

export interface CriuDiagnosis {
  /** CRIU's lines that say what went wrong, without timestamps and source locations; at most a few. */
  causes: string[];
  /** Retrying cannot fix it (a connected socket, a non-root process, a taken port). */
  permanent: boolean;
  /** What the user can do, when the cause is a known one. */
  hint?: string;
}

/** The log path podman prints after a CRIU failure, in either of its shapes (escaped in a logrus msg="…", or on a line of its own). */
export function criuLogPath(stderr: string): string | undefined {
  return /log file: (\/[^\s"\\]+\.log)/.exec(stderr)?.[1];
}

interface KnownCause {
  pattern: RegExp;
  permanent: boolean;
  hint: string;
}

// Most specific first: the first that matches a cause line decides.
const KNOWN: KnownCause[] = [
  {
    pattern: /Connected TCP socket|--tcp-established/,
    permanent: true,
    hint: 'the container holds established TCP connections; a retry meets them again. Turn checkpoint.skipInFlight on (CRIU then closes them cleanly and clients reconnect), or set checkpoint.tcpEstablished with checkpoint.keepAddress where the container keeps its address on the destination',
  },
  {
    pattern: /In-flight connection/,
    permanent: false,
    hint: 'a client was connecting at the moment of the freeze; turn checkpoint.skipInFlight on so CRIU skips connections not yet accepted (see docs/what-moves.md)',
  },
  {
    pattern: /Can't get rlimit/,
    permanent: true,
    hint: 'a process in the container runs as a non-root user, and CRIU on this host cannot read its limits without CAP_SYS_RESOURCE; run the container as root, or give the host that capability',
  },
  {
    pattern: /Address already in use/,
    permanent: true,
    hint: 'the destination host already uses an address and port the container listens on, through its host network or a published port; free the port there or choose another host',
  },
  {
    pattern: /file locks are hold by dumping tasks|--file-locks/,
    permanent: true,
    hint: 'the container holds file locks (databases do: InnoDB, Aria, SQLite); turn checkpoint.fileLocks on so CRIU dumps and restores them',
  },
  {
    pattern: /anon_inode:\[io_uring\]/,
    permanent: true,
    hint: "a process in the container uses io_uring, which CRIU cannot dump; turn it off in the service (MariaDB: --innodb-use-native-aio=0) or keep podman's default seccomp profile, which blocks it",
  },
  {
    pattern: /No space left on device|Disk quota exceeded/i,
    permanent: true,
    hint: 'the disk is full; free space and migrate again',
  },
];

// Lines every run writes on this kind of host, failed or not (seen in every log recorded on the bed).
const NOISE = [/Can't setup RLIMIT_NOFILE for self/];
// CRIU's own summaries and consequences of the real error: shown only when nothing better is there.
const GENERIC = [/Dumping FAILED|Restoring FAILED/, /failed with -?\d+/, /Unable to open fd=/, /cgroupd: recv req error/, /Error \(criu\/cr-(dump|restore)\.c:\d+\): .*FAILED/];

const MAX_CAUSES = 3;

/** "(00.175283)      1: Error (criu/sk-inet.c:200): inet: Connected TCP socket, ..." → "inet: Connected TCP socket, ...". */
function causeText(line: string): string {
  return line
    .replace(/^\(\s*[\d.]+\)\s*/, '')
    .replace(/^\d+:\s*/, '')
    .replace(/^Error\s*\([^)]*\):\s*/, '')
    .trim();
}

/** Reads CRIU's log: the error lines that name the cause, and whether retrying could help. */
export function diagnoseCriuLog(log: string): CriuDiagnosis {
  const errors = log
    .split('\n')
    .filter((l) => /\bError \(/.test(l) && !NOISE.some((n) => n.test(l)))
    .map((l) => ({ line: l, text: causeText(l) }));
  const specific = errors.filter((e) => !GENERIC.some((g) => g.test(e.line)));
  const chosen = (specific.length > 0 ? specific : errors).map((e) => e.text);
  const causes = [...new Set(chosen)].slice(0, MAX_CAUSES);
  const known = KNOWN.find((k) => causes.some((c) => k.pattern.test(c)));
  // Unknown causes keep the old behaviour: retried, since some CRIU failures are passing.
  return known ? { causes, permanent: known.permanent, hint: known.hint } : { causes, permanent: false };
}

/** One sentence for an error message: "CRIU could not checkpoint the container: <causes> (<hint>)". */
export function describeCriuFailure(op: CriuOperation, d: CriuDiagnosis): string {
  const what = d.causes.length > 0 ? d.causes.join('; ') : 'CRIU failed without naming a cause in its log';
  return `CRIU could not ${op} the container: ${what}${d.hint ? ` (${d.hint})` : ''}`;
}
