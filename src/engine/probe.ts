import type { HealthProbe } from './model';
import { ValidationError } from '../errors';

function port(text: string, spec: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw new ValidationError(`health probe "${spec}": "${text}" is not a port number (1-65535)`);
  return n;
}

/**
 * `--probe` syntax: auto | none | tcp:PORT | http:PORT[/PATH] | exec:CMD [ARG...]
 * (exec arguments are split on spaces and run inside the container, never by a shell).
 */
export function parseProbe(spec: string): HealthProbe {
  if (spec === 'auto' || spec === 'none') return { kind: spec };
  const i = spec.indexOf(':');
  const kind = i < 0 ? spec : spec.slice(0, i);
  const rest = i < 0 ? '' : spec.slice(i + 1);
  switch (kind) {
    case 'tcp':
      return { kind: 'tcp', port: port(rest, spec) };
    case 'http': {
      const slash = rest.indexOf('/');
      const p = port(slash < 0 ? rest : rest.slice(0, slash), spec);
      const path = slash < 0 ? '/' : rest.slice(slash);
      if (/[\s\0]/.test(path) || path.length > 2048) throw new ValidationError(`health probe "${spec}": bad HTTP path`);
      return { kind: 'http', port: p, path };
    }
    case 'exec': {
      const argv = rest.split(' ').filter(Boolean);
      if (argv.length === 0) throw new ValidationError(`health probe "${spec}": exec needs a command`);
      return { kind: 'exec', argv };
    }
    default:
      throw new ValidationError(`unknown health probe "${spec.slice(0, 60)}": use auto, none, tcp:PORT, http:PORT[/PATH] or exec:CMD`);
  }
}
