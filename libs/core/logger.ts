// The one logger factory. PII and secrets are redacted by path before anything is written;
// callers should still log ids and counts, not payloads.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths pino censors wherever they appear (one and two levels deep, plus common carriers). */
export const REDACT_PATHS = [
  'email',
  'ip',
  'user_id',
  'userId',
  'traits',
  'properties',
  'account_traits',
  'user_agent',
  'password',
  'token',
  'authorization',
  'writeKey',
  'masterKey',
  'apiKey',
  'adminToken',
  '*.email',
  '*.ip',
  '*.user_id',
  '*.userId',
  '*.traits',
  '*.properties',
  '*.account_traits',
  '*.user_agent',
  '*.password',
  '*.token',
  '*.authorization',
  '*.writeKey',
  '*.masterKey',
  '*.apiKey',
  '*.adminToken',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-forwarded-for"]',
  'req.remoteAddress',
];

export function createLogger(opts: { level?: string; name?: string; destination?: pino.DestinationStream } = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    name: opts.name ?? 'tracklane',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined,
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
