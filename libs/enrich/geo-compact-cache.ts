// Finds or builds the compact form of an mmdb city file in a cache directory, keyed by the source's
// path, size and mtime (a replaced file gets a new key). The build runs in a child process.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GEO_COMPACT_VERSION, openGeoCompact, type GeoCompactFile } from './geo-compact.js';

export interface CompactOpen {
  file: GeoCompactFile;
  path: string;
  /** true when this call built it (a child process ran) */
  built: boolean;
}

/** `<cacheDir>/<name>-<key>.tlgeo`, the key derived from the source's real path, size and mtime. */
export async function compactPathFor(source: string, cacheDir: string): Promise<string> {
  const s = await stat(source);
  const key = createHash('sha256')
    .update(`${GEO_COMPACT_VERSION}\0${resolve(source)}\0${s.size}\0${s.mtimeMs}`)
    .digest('hex')
    .slice(0, 16);
  return join(cacheDir, `${basename(source).replace(/\.mmdb$/i, '')}-${key}.tlgeo`);
}

function builderCommand(): { args: string[] } {
  const self = fileURLToPath(import.meta.url);
  const ts = self.endsWith('.ts');
  const script = join(self, '..', ts ? 'geo-compact-build.ts' : 'geo-compact-build.js');
  // NOTE: from TypeScript sources (tests, tsx) the child needs tsx's loader, resolved from here so
  // the child's cwd does not matter. The heap flag overrides a small NODE_OPTIONS limit inherited
  // from a worker: the build holds the whole mmdb and its maps (≈ 300 MB for DB-IP Lite IPv6).
  const loader = ts ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
  return { args: [...loader, '--max-old-space-size=2048', script] };
}

function runBuilder(source: string, out: string, timeoutMs: number): Promise<void> {
  const { args } = builderCommand();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...args, source, out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      if (stderr.length < 4000) stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`building the compact geo data for ${source} failed (${signal ?? `code ${code}`}): ${stderr.trim()}`));
    });
  });
}

function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens the compact form of `source` from the first of `cacheDirs` that holds a readable one of
 * this version; otherwise builds it into the first writable directory (a read-only one, such as
 * the image's prebuilt /app/geo-cache with a mounted GEOIP_DB, is skipped). Concurrent builders
 * are safe: each writes its own temp file and renames it into place.
 */
export async function openCompactFor(source: string, cacheDirs: readonly string[], o: { buildTimeoutMs?: number } = {}): Promise<CompactOpen> {
  const paths = await Promise.all(cacheDirs.map((d) => compactPathFor(source, d)));
  for (const path of paths) {
    try {
      return { file: openGeoCompact(path), path, built: false };
    } catch {
      // missing, truncated or another version
    }
  }
  const i = cacheDirs.findIndex(writable);
  const path = paths[i];
  if (path === undefined) throw new Error(`no writable geo cache directory for ${source} (tried ${cacheDirs.join(', ')})`);
  await runBuilder(source, path, o.buildTimeoutMs ?? 120_000);
  return { file: openGeoCompact(path), path, built: true };
}
