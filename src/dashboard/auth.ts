import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import type { FerryConfig } from '../config/load';
import { ConfigError } from '../errors';

/** Loopback only: 127.0.0.0/8, ::1 and "localhost". Anything else is reachable from elsewhere. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export type DashboardAuth = FerryConfig['dashboard'];

function hasAuth(a: DashboardAuth): boolean {
  return a.token !== '' || (a.basicAuth.user !== '' && a.basicAuth.password !== '');
}

/** The dashboard can retry migrations: it is never open to the network without configured credentials. */
export function checkListen(host: string, a: DashboardAuth): void {
  if (a.basicAuth.user !== '' && a.basicAuth.password === '') throw new ConfigError('dashboard.basicAuth.user is set but dashboard.basicAuth.password is empty');
  if (!isLoopback(host) && !hasAuth(a)) {
    throw new ConfigError(`refusing to serve the dashboard on ${host} (not loopback) without credentials: set dashboard.token (FERRY_DASHBOARD_TOKEN) or dashboard.basicAuth.user/password, or listen on 127.0.0.1`);
  }
}

/** What a request must show. */
export interface Credentials {
  /** Bearer token; empty when only basic auth is configured. */
  token: string;
  basicAuth: { user: string; password: string };
  /** Nothing was configured: the token was made for this run and only the link printed at start holds it. */
  generated: boolean;
}

/**
 * The configured credentials, or else a random token for this run: loopback is no boundary
 * (any local user, a reverse proxy, a browser tricked by DNS rebinding reach it).
 */
export function credentialsFor(a: DashboardAuth): Credentials {
  if (hasAuth(a)) return { token: a.token, basicAuth: a.basicAuth, generated: false };
  return { token: randomBytes(32).toString('base64url'), basicAuth: a.basicAuth, generated: true };
}

/**
 * Named after the port the dashboard listens on: cookies do not tell ports apart, and two
 * dashboards on one machine (say, a read-only one beside the full one) must not log each
 * other out.
 */
export function tokenCookie(port: number | undefined): string {
  return `ferry_token_${port ?? 0}`;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined; // malformed: no credentials, not a server error
      }
    }
  }
  return undefined;
}

/**
 * Accepts a bearer token (Authorization header, the cookie, or ?token= once, which sets the
 * cookie so the page's own requests carry it) or HTTP basic auth. Everything else is 401.
 */
export function authMiddleware(c: Credentials) {
  const basic = c.basicAuth.user !== '' && c.basicAuth.password !== '';
  const refusal = c.generated
    ? 'unauthorized: open the link `ferry dashboard` printed when it started (…/?token=…), or send that token (Authorization: Bearer …)\n'
    : c.token !== ''
      ? 'unauthorized: send the dashboard token (Authorization: Bearer …, or open /?token=…)\n'
      : 'unauthorized\n';
  return (req: Request, res: Response, next: NextFunction): void => {
    const header = req.headers.authorization ?? '';
    if (c.token !== '') {
      const name = tokenCookie(req.socket.localPort);
      const bearer = header.startsWith('Bearer ') ? header.slice(7) : undefined;
      const fromCookie = cookie(req, name);
      const fromQuery = typeof req.query.token === 'string' ? req.query.token : undefined;
      if ((bearer && same(bearer, c.token)) || (fromCookie && same(fromCookie, c.token))) {
        next();
        return;
      }
      if (fromQuery && same(fromQuery, c.token)) {
        res.cookie(name, c.token, { httpOnly: true, sameSite: 'strict', path: '/' });
        // Take the token out of the address bar (and of history) once the cookie holds it.
        if (req.method === 'GET') {
          const url = new URL(req.originalUrl, 'http://x');
          url.searchParams.delete('token');
          res.redirect(302, `${url.pathname}${url.search}`);
          return;
        }
        next();
        return;
      }
    }
    if (basic && header.startsWith('Basic ')) {
      const text = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const i = text.indexOf(':');
      if (i >= 0 && same(text.slice(0, i), c.basicAuth.user) && same(text.slice(i + 1), c.basicAuth.password)) {
        next();
        return;
      }
    }
    if (basic) res.setHeader('WWW-Authenticate', 'Basic realm="ferry", charset="UTF-8"');
    res.status(401).type('text/plain').send(refusal);
  };
}
