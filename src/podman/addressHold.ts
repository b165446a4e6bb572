import type { CommandRunner } from '../exec/runner';
import { coerceError } from '../errors/coerceError';

/**
 * Holds back TCP to a container's addresses on the destination host while it is restored with
 * its established connections (checkpoint.tcpEstablished with keepAddress).
 *
 * podman brings the container's network up (the address answers at once: the MAC came along)
 * before runc and CRIU start, and CRIU puts the connections back only later. A segment that
 * arrives in between (a client's retransmission) meets no socket, and the kernel answers it
 * with a reset: measured on the test bed, 80 to 385 ms per restore in which every SYN was
 * refused, and one kept connection in eight reset. CRIU's own network lock does not cover a
 * namespace podman made, and CRIU's action scripts start after the address is up.
 *
 * The hold is an nftables `netdev` ingress chain on the device the host reaches the address
 * through (a macvlan or ipvlan network's parent): it sees the frames before the macvlan does,
 * so nothing reaches the new namespace until the hold is released after the restore. A
 * dropped segment is sent again by its client, so nothing is lost. One table per address,
 * named after it: a release (of this migration, or of a later one of the same address after a
 * crash) needs to know nothing else, and is safe to repeat.
 */

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/** nftables table for one address: `ferry_hold_198_18_0_230`. */
export function holdTable(address: string): string {
  if (!IPV4.test(address)) throw new Error(`not an IPv4 address: ${JSON.stringify(address)}`);
  return `ferry_hold_${address.replace(/\./g, '_')}`;
}

/** The record's addresses (Redis's word: anything but an IPv4 address is left out). */
export function recordedAddresses(rec: { source?: { addresses?: unknown } }): string[] {
  const list = rec.source?.addresses;
  return Array.isArray(list) ? list.filter((a): a is string => typeof a === 'string' && IPV4.test(a)) : [];
}

/** The addresses a restore of this migration holds: only where connections are kept and the address moves with the container. */
export function addressesToHold(rec: { source?: { addresses?: unknown } }, config: { checkpoint: { tcpEstablished: boolean; keepAddress: boolean } }): string[] {
  return config.checkpoint.tcpEstablished && config.checkpoint.keepAddress ? recordedAddresses(rec) : [];
}

// $1 is "hold" or "release", $2 the hold's life in seconds, the rest are addresses.
// Best effort: without nft, or where it fails, the restore goes on as it would without the
// hold, and the output says so. The address sits in a set whose elements time out: a hold
// that nobody releases (its worker died at the wrong moment) ends by itself. A release that
// leaves the table fails.
const SCRIPT = [
  'set -u',
  'op=$1; life=$2; shift 2',
  'command -v nft >/dev/null 2>&1 || { echo "unavailable: nft is not installed"; exit 0; }',
  'for ip in "$@"; do',
  '  t=ferry_hold_$(echo "$ip" | tr . _)',
  '  nft delete table netdev "$t" 2>/dev/null',
  '  if [ "$op" = release ]; then',
  '    nft list table netdev "$t" >/dev/null 2>&1 && { echo "the hold on $ip is still there" >&2; exit 1; }',
  '    continue',
  '  fi',
  '  dev=$(ip -o -4 route get "$ip" 2>/dev/null | sed -n "s/.* dev \\([^ ]*\\).*/\\1/p")',
  '  [ -n "$dev" ] || { echo "unavailable: no route to $ip"; continue; }',
  '  printf "table netdev %s {\\n set held {\\n  type ipv4_addr; flags timeout;\\n  elements = { %s timeout %ss }\\n }\\n chain in {\\n  type filter hook ingress device \\"%s\\" priority -500;\\n  ip daddr @held ip protocol tcp drop\\n }\\n}\\n" "$t" "$ip" "$life" "$dev" | nft -f - && echo "held $ip on $dev" || { nft delete table netdev "$t" 2>/dev/null; echo "unavailable: nft could not hold $ip on $dev"; }',
  'done',
].join('\n');

/** The hold's life: as long as a restore may take, then it ends even if nobody releases it. */
export function addressHoldArgv(op: 'hold' | 'release', addresses: readonly string[], lifeMs = 0): string[] {
  for (const a of addresses) holdTable(a);
  return ['sh', '-c', SCRIPT, 'ferry-address-hold', op, String(Math.max(1, Math.ceil(lifeMs / 1000))), ...addresses];
}

/** What a hold did, for the step's result: the addresses held, or why not. */
export interface HoldOutcome {
  held: string[];
  unavailable: string[];
}

export function parseHoldOutput(stdout: string): HoldOutcome {
  const lines = stdout.split('\n').map((l) => l.trim());
  return {
    held: lines.filter((l) => l.startsWith('held ')).map((l) => l.slice(5)),
    unavailable: lines.filter((l) => l.startsWith('unavailable: ')).map((l) => l.slice(13)),
  };
}

/** Never throws: a hold that cannot be placed is reported, and the restore goes on without it. */
export async function holdAddresses(runner: CommandRunner, addresses: readonly string[], lifeMs: number): Promise<HoldOutcome> {
  if (!addresses.length) return { held: [], unavailable: [] };
  try {
    const res = await runner.run(addressHoldArgv('hold', addresses, lifeMs), { timeoutMs: 10_000 });
    if (res.code === 0) return parseHoldOutput(res.stdout);
    return { held: [], unavailable: [`the hold failed on ${runner.where}: ${res.stderr.trim() || `exit ${String(res.code)}`}`] };
  } catch (e: unknown) {
    return { held: [], unavailable: [`the hold failed on ${runner.where}: ${coerceError(e).message}`] };
  }
}

/** Releases the holds on these addresses; none there is fine. */
export async function releaseAddresses(runner: CommandRunner, addresses: readonly string[]): Promise<void> {
  if (!addresses.length) return;
  const res = await runner.run(addressHoldArgv('release', addresses), { timeoutMs: 10_000 });
  if (res.code !== 0) throw new Error(`could not release the hold on ${addresses.join(', ')} on ${runner.where}: ${res.stderr.trim() || `exit ${String(res.code)}`}`);
}
