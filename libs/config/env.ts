// Helpers for the zod config schemas each service parses once in main(): explicit boolean
// parsing ("false" is false) and a readable error listing every bad variable.
import { z } from 'zod';

/** "true"/"1"/"yes"/"on" → true, "false"/"0"/"no"/"off"/"" → false; anything else is an error. */
export const envBoolean = (defaultValue: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return defaultValue;
      const s = v.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off', ''].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: `expected true or false, got "${v}"` });
      return z.NEVER;
    });

/** Unset or empty → undefined. */
export const envOptionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** A comma-separated setting → its trimmed, non-empty items. */
export function parseList(v: string): string[] {
  return v
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Reads a file a setting names; how, so tests can hand in files without a disk. */
export type ReadFile = (path: string) => string;

/**
 * The text of the file a setting names (a CA, a certificate, a key); a ConfigError naming the
 * setting and the path (not secret), never the content, when it cannot be read or is empty.
 */
export function readSettingFile(setting: string, path: string, read: ReadFile): string {
  let text: string;
  try {
    text = read(path);
  } catch (err) {
    const code = err instanceof Error && 'code' in err ? String((err as NodeJS.ErrnoException).code) : 'unreadable';
    throw new ConfigError(`${setting}: cannot read ${path} (${code})`);
  }
  if (text.trim() === '') throw new ConfigError(`${setting}: ${path} is empty`);
  return text;
}

/** A password file (`…_FILE`, a mounted Secret): its one trailing newline is not part of the password. */
export function readSecretFile(setting: string, path: string, read: ReadFile): string {
  return readSettingFile(setting, path, read).replace(/\r?\n$/, '');
}

/** Parses env with a schema; on failure throws one ConfigError naming each variable (never its value). */
export function parseEnv<S extends z.ZodType>(schema: S, env: Record<string, string | undefined>): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

/**
 * The admin API's bounds, shared by the embedded runner and the fleet collector: failed
 * authentications per address and minute before a minute of 429, analyst queries running at
 * once per credential, and the engine's bounds of one analyst query (unset: the defaults of
 * libs/clickhouse/analyst-settings.ts, DEFAULT_QUERY_LIMITS).
 */
export const adminApiConfigShape = {
  AUTH_MAX_FAILURES: z.coerce.number().int().min(1).max(100_000).default(20),
  QUERY_MAX_CONCURRENT_PER_KEY: z.coerce.number().int().min(1).max(64).default(2),
  QUERY_MAX_MEMORY_BYTES: z.coerce.number().int().min(1024 * 1024).optional(),
  QUERY_MAX_ROWS_TO_READ: z.coerce.number().int().min(1).optional(),
  QUERY_MAX_BYTES_TO_READ: z.coerce.number().int().min(1).optional(),
  QUERY_MAX_RESULT_ROWS: z.coerce.number().int().min(1).optional(),
  QUERY_MAX_RESULT_BYTES: z.coerce.number().int().min(1024).optional(),
  QUERY_MAX_EXECUTION_SECONDS: z.coerce.number().int().min(1).max(3_600).optional(),
};

type AdminApiConfig = z.infer<z.ZodObject<typeof adminApiConfigShape>>;

/** The query bounds a config sets (the rest keep their defaults). */
export function queryLimitsFrom(c: AdminApiConfig): Partial<Record<'maxMemoryBytes' | 'maxRowsToRead' | 'maxBytesToRead' | 'maxResultRows' | 'maxResultBytes' | 'maxExecutionSeconds', number>> {
  const pairs = [
    ['maxMemoryBytes', c.QUERY_MAX_MEMORY_BYTES],
    ['maxRowsToRead', c.QUERY_MAX_ROWS_TO_READ],
    ['maxBytesToRead', c.QUERY_MAX_BYTES_TO_READ],
    ['maxResultRows', c.QUERY_MAX_RESULT_ROWS],
    ['maxResultBytes', c.QUERY_MAX_RESULT_BYTES],
    ['maxExecutionSeconds', c.QUERY_MAX_EXECUTION_SECONDS],
  ] as const;
  return Object.fromEntries(pairs.filter(([, v]) => v !== undefined));
}
