import { spawn } from 'node:child_process';
import { lazyPaths } from '../../src/postcopy';
import { hostInfo, onHost } from './bed';

/** The pid of the page tunnel's SSH master, found by its command line: asked through its control socket, a stopped master would never answer. */
const MASTER_PID = 'pgrep -f -- "-M -S $1 " | head -n 1';

/**
 * Slows a post-copy migration's pages on their way (the source's SSH tunnel stopped 200 ms of
 * every 220 ms), from the moment the tunnel exists: the container runs on the destination while
 * most of its memory is still on the source.
 *
 * The tunnel, not the page server: a signal that stops CRIU's page server in the middle of a
 * send to a full socket makes the send return short, and CRIU's page server treats a short
 * splice as fatal without a word in its log (criu/page-xfer.c, page_server_get_pages), so the
 * copy failed under load for a reason no user would meet. SSH retries after a stop.
 */
export function slowPageTunnel(host: string, migrationId: string): { stop(): void; release(): void } {
  const ctl = lazyPaths(migrationId).tunnelControl;
  const h = hostInfo(host);
  const loop = `while [ ! -S "$1" ]; do sleep 0.01; done; p=$(${MASTER_PID}); [ -n "$p" ] || exit 1; while kill -STOP "$p" 2>/dev/null; do sleep 0.2; kill -CONT "$p" 2>/dev/null; sleep 0.02; done`;
  const slow = spawn('nsenter', [`--mount=${h.mountns}`, `--net=${h.netns}`, 'sh', '-c', loop, 'sh', ctl], { stdio: 'ignore' });
  const signal = (sig: 'STOP' | 'CONT') => onHost(host, ['sh', '-c', `p=$(${MASTER_PID}) && [ -n "$p" ] && kill -${sig} "$p"; true`, 'sh', ctl]);
  return {
    /** Ends the slowing with the tunnel stopped: no page moves until release(). */
    stop() {
      slow.kill('SIGKILL');
      signal('STOP');
    },
    /** Ends the slowing; pages flow at full speed. */
    release() {
      slow.kill('SIGKILL');
      signal('CONT');
    },
  };
}
