// Where the dev/test services keep their downloads, data, logs and state: `.services/` at the
// repository root (gitignored), or TRACKLANE_SERVICES_DIR when set.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const servicesDir = process.env.TRACKLANE_SERVICES_DIR
  ? resolve(process.env.TRACKLANE_SERVICES_DIR)
  : join(repoRoot, '.services');

export const scriptsDir = join(repoRoot, 'scripts', 'services');

export function servicePath(...parts: string[]): string {
  return join(servicesDir, ...parts);
}

/** A path relative to the repo root for messages, absolute when outside it. */
export function shortPath(path: string): string {
  return path.startsWith(repoRoot + '/') ? path.slice(repoRoot.length + 1) : path;
}
