// Child-process entry that writes the compact form of one mmdb city file:
//   node geo-compact-build.js <source.mmdb> <out.tlgeo>
// NOTE: its own process, so the whole mmdb (and the build's maps) never count towards the
// enricher's peak RSS; geo-compact-cache.ts starts it and waits for it.
import { readFile } from 'node:fs/promises';
import { Reader, type Response } from 'maxmind';
import { buildGeoCompact } from './geo-compact-writer.js';
import { normalizeGeoRecord } from './geo-lookup.js';

async function main(): Promise<void> {
  const [source, out] = process.argv.slice(2);
  if (source === undefined || out === undefined) throw new Error('usage: geo-compact-build <source.mmdb> <out.tlgeo>');
  const db = await readFile(source);
  const reader = new Reader<Response>(db);
  const t0 = performance.now();
  const counts = buildGeoCompact(db, reader, normalizeGeoRecord, out);
  process.stdout.write(`${JSON.stringify({ ...counts, buildMs: Math.round(performance.now() - t0) })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
