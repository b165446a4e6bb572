import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import type { FerryConfig } from '../config/load';
import { ConfigError } from '../errors';

export const TOKEN_COOKIE = 'ferry_token';

/** Loopback only: 127.0.0.0/8, ::1 and "localhost". Anything else is reachable from elsewhere. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1' || host === '[::1]') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export type DashboardAuth = FerryConfig['dashboard'];

function hasAuth(a: DashboardAuth): boolean {
  return a.token !== '' || (a.basicAuth.user !== '' && a.basicAuth.password !== '');
}

/** The dashboard can retry migrations: it is never open to the network without credentials. */
export function checkListen(host: string, a: DashboardAuth): void {
  if (a.basicAuth.user !== '' && a.basicAuth.password === '') throw new ConfigError('dashboard.basicAuth.user is set but dashboard.basicAuth.password is empty');
  if (!isLoopback(host) && !hasAuth(a)) {
    throw new ConfigError(`refusing to serve the dashboard on ${host} (not loopback) without credentials: set dashboard.token (FERRY_DASHBOARD_TOKEN) or dashboard.basicAuth.user/password, or listen on 127.0.0.1`);
  }
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return undefined;
}

/**
 * Accepts a bearer token (Authorization header, the cookie, or ?token= once, which sets the
 * cookie so the page's own requests carry it) or HTTP basic auth. Without credentials
 * configured (loopback only, see checkListen) everything is let through.
 */
export function authMiddleware(a: DashboardAuth) {
  const basic = a.basicAuth.user !== '' && a.basicAuth.password !== '';
  return (req: Request, res: Response, next: NextFunction): void => {
    if (!hasAuth(a)) return next();
    const header = req.headers.authorization ?? '';
    if (a.token !== '') {
      const bearer = header.startsWith('Bearer ') ? header.slice(7) : undefined;
      const fromCookie = cookie(req, TOKEN_COOKIE);
      const fromQuery = typeof req.query.token === 'string' ? req.query.token : undefined;
      if ((bearer && same(bearer, a.token)) || (fromCookie && same(fromCookie, a.token))) return next();
      if (fromQuery && same(fromQuery, a.token)) {
        res.cookie(TOKEN_COOKIE, a.token, { httpOnly: true, sameSite: 'strict', path: '/' });
        // Take the token out of the address bar (and of history) once the cookie holds it.
        if (req.method === 'GET') {
          const url = new URL(req.originalUrl, 'http://x');
          url.searchParams.delete('token');
          return res.redirect(302, `${url.pathname}${url.search}`);
        }
        return next();
      }
    }
    if (basic && header.startsWith('Basic ')) {
      const text = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const i = text.indexOf(':');
      if (i >= 0 && same(text.slice(0, i), a.basicAuth.user) && same(text.slice(i + 1), a.basicAuth.password)) return next();
    }
    if (basic) res.setHeader('WWW-Authenticate', 'Basic realm="ferry", charset="UTF-8"');
    res.status(401).type('text/plain').send(a.token !== '' ? 'unauthorized: send the dashboard token (Authorization: Bearer …, or open /?token=…)\n' : 'unauthorized\n');
  };
}
