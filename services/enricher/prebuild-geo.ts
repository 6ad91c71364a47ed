// Builds the compact geo form (libs/enrich/geo-compact.ts) ahead of time, e.g. into the image:
//   node dist/services/enricher/prebuild-geo.js <cache-dir> [city.mmdb …]   (default: the bundled DB-IP Lite files)
// An enricher started with GEOIP_CACHE_DIR=<cache-dir> then opens it in well under a second.
import { openGeoLookup } from '../../libs/enrich/geo-lookup.js';

async function main(): Promise<void> {
  const [dir, ...paths] = process.argv.slice(2);
  if (dir === undefined) throw new Error('usage: prebuild-geo <cache-dir> [city.mmdb …]');
  const geo = await openGeoLookup({ cacheDirs: [dir], ...(paths.length > 0 ? { paths } : {}), cacheSize: 1 });
  geo.close();
  process.stdout.write(`${JSON.stringify(geo.stats)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
