import type { NextFunction, Request, Response } from 'express';

/** Answered to whatever address the dashboard listens on. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/**
 * The host of a Host header or an Origin's authority ("name", "name:port", "[v6]:port"),
 * lower case, without port, brackets or a final dot; undefined when it is not one.
 */
export function hostName(authority: string): string | undefined {
  if (authority === '' || /[\s@/?#\\]/.test(authority)) return undefined;
  let url: URL;
  try {
    url = new URL(`http://${authority}`);
  } catch {
    return undefined;
  }
  return url.hostname.replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

/** The names the dashboard answers to: its listen address, loopback, and dashboard.allowedHosts. */
export function allowedHostNames(listenHost: string, extra: readonly string[]): ReadonlySet<string> {
  const names = new Set(LOOPBACK_NAMES);
  for (const h of [listenHost, ...extra]) {
    const name = hostName(h.includes(':') && !h.startsWith('[') ? `[${h}]` : h);
    if (name) names.add(name);
  }
  return names;
}

/**
 * Against DNS rebinding: a page on a name the attacker controls, re-resolved to this
 * address, reaches the dashboard with its own name in the Host header. Only the names the
 * dashboard is known by are answered. The port is not compared: the name is what an
 * attacker cannot forge in a browser.
 */
export function hostCheck(allowed: ReadonlySet<string>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const given = req.headers.host ?? '';
    const name = hostName(given);
    if (name !== undefined && allowed.has(name)) {
      next();
      return;
    }
    res
      .status(421)
      .type('text/plain')
      .send(`misdirected request: this dashboard does not answer to host ${JSON.stringify(given.slice(0, 100))} (a guard against DNS rebinding); if that name is yours, add it to dashboard.allowedHosts\n`);
  };
}
