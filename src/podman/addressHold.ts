import type { CommandRunner } from '../exec/runner';

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

/**
 * The addresses a restore of this migration holds: only where connections are kept and the
 * address moves with the container. The record is Redis's word: anything but an address is left out.
 */
export function addressesToHold(rec: { source?: { addresses?: readonly string[] } }, config: { checkpoint: { tcpEstablished: boolean; keepAddress: boolean } }): string[] {
  if (!config.checkpoint.tcpEstablished || !config.checkpoint.keepAddress) return [];
  return (rec.source?.addresses ?? []).filter((a) => typeof a === 'string' && IPV4.test(a));
}

// $1 is "hold" or "release", the rest are addresses. Best effort: without nft, or where it
// fails, the restore goes on as it would without the hold, and the output says so.
const SCRIPT = [
  'set -u',
  'op=$1; shift',
  'command -v nft >/dev/null 2>&1 || { echo "unavailable: nft is not installed"; exit 0; }',
  'for ip in "$@"; do',
  '  t=ferry_hold_$(echo "$ip" | tr . _)',
  '  nft delete table netdev "$t" 2>/dev/null',
  '  [ "$op" = hold ] || continue',
  '  dev=$(ip -o -4 route get "$ip" 2>/dev/null | sed -n "s/.* dev \\([^ ]*\\).*/\\1/p")',
  '  [ -n "$dev" ] || { echo "unavailable: no route to $ip"; continue; }',
  '  printf "table netdev %s {\\n chain in {\\n  type filter hook ingress device \\"%s\\" priority -500;\\n  ip daddr %s ip protocol tcp drop\\n }\\n}\\n" "$t" "$dev" "$ip" | nft -f - && echo "held $ip on $dev" || echo "unavailable: nft could not hold $ip on $dev"',
  'done',
].join('\n');

export function addressHoldArgv(op: 'hold' | 'release', addresses: readonly string[]): string[] {
  for (const a of addresses) holdTable(a);
  return ['sh', '-c', SCRIPT, 'ferry-address-hold', op, ...addresses];
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

export async function holdAddresses(runner: CommandRunner, addresses: readonly string[]): Promise<HoldOutcome> {
  if (!addresses.length) return { held: [], unavailable: [] };
  const res = await runner.run(addressHoldArgv('hold', addresses), { timeoutMs: 10_000 });
  if (res.code !== 0) throw new Error(`could not hold back TCP to ${addresses.join(', ')} on ${runner.where}: ${res.stderr.trim() || `exit ${String(res.code)}`}`);
  return parseHoldOutput(res.stdout);
}

/** Releases the holds on these addresses; none there is fine. */
export async function releaseAddresses(runner: CommandRunner, addresses: readonly string[]): Promise<void> {
  if (!addresses.length) return;
  const res = await runner.run(addressHoldArgv('release', addresses), { timeoutMs: 10_000 });
  if (res.code !== 0) throw new Error(`could not release the hold on ${addresses.join(', ')} on ${runner.where}: ${res.stderr.trim() || `exit ${String(res.code)}`}`);
}
