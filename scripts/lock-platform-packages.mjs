#!/usr/bin/env node
// Re-adds chDB's per-platform native packages to package-lock.json after `npm install`.
// NOTE: the registry mirror on our machines serves only @chdb/lib-linux-x64-gnu, so npm
// writes a lock without the other platforms' optional packages, and `npm ci` then refuses
// the lock ("Missing: @chdb/lib-darwin-arm64@ from lock file"). The entries below are what
// npm itself writes for a skipped optional platform package; nothing is downloaded for them
// on linux-x64. Run after every `npm install` that rewrites the lock.
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const chdb = lock.packages['node_modules/chdb'];
if (!chdb?.optionalDependencies) throw new Error('chdb is not in package-lock.json');

const platforms = {
  '@chdb/lib-darwin-arm64': { os: ['darwin'], cpu: ['arm64'] },
  '@chdb/lib-darwin-x64': { os: ['darwin'], cpu: ['x64'] },
  '@chdb/lib-linux-arm64-gnu': { os: ['linux'], cpu: ['arm64'], libc: ['glibc'] },
  '@chdb/lib-linux-x64-gnu': { os: ['linux'], cpu: ['x64'], libc: ['glibc'] },
};
let added = 0;
for (const [name, version] of Object.entries(chdb.optionalDependencies)) {
  const key = `node_modules/${name}`;
  const platform = platforms[name];
  if (lock.packages[key] || !platform) continue;
  lock.packages[key] = { version, cpu: platform.cpu, ...(platform.libc ? { libc: platform.libc } : {}), license: 'Apache-2.0', optional: true, os: platform.os };
  added++;
}
const sorted = {};
for (const k of Object.keys(lock.packages).sort((a, b) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b)))) sorted[k] = lock.packages[k];
lock.packages = sorted;
writeFileSync(lockPath, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} platform package entr${added === 1 ? 'y' : 'ies'} added`);
