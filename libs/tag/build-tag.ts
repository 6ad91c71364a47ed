// Bundles the web tag (libs/tag/src) with esbuild into one minified IIFE, in memory, with its
// gzip form and an ETag. The collector builds it once, on the first GET /tag.js, and serves
// it from memory: nothing generated is committed, and a change to the source is live on the
// next start.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

export interface TagBundle {
  code: Buffer;
  gzip: Buffer;
  /** content hash (hex, 16 chars) */
  hash: string;
  /** weak ETag: the same for the identity and gzip representations */
  etag: string;
}

/** Browsers the bundle must parse in (esbuild lowers newer syntax). */
export const TAG_TARGETS = ['chrome80', 'firefox78', 'safari13.1', 'edge80'];

/**
 * The tag's source folder. NOTE: from dist/ (after `npm run build`) the TypeScript source is
 * read from libs/tag/src beside dist/ (the repository's, or the copy in the container image):
 * it is bundled by esbuild, never compiled by tsc.
 */
export function tagSourceDir(): string {
  const candidates = [new URL('./src/', import.meta.url), new URL('../../../libs/tag/src/', import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(join(dir, 'tag.ts'))) return dir;
  }
  throw new Error(`web tag source not found (looked in ${candidates.map((c) => fileURLToPath(c)).join(', ')})`);
}

export async function buildTagBundle(opts: { minify?: boolean } = {}): Promise<TagBundle> {
  const dir = tagSourceDir();
  const result = await build({
    entryPoints: [join(dir, 'tag.ts')],
    // NOTE: the same settings wherever it is built (no tsconfig discovery): a stable ETag.
    tsconfigRaw: { compilerOptions: { alwaysStrict: true } },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: TAG_TARGETS,
    minify: opts.minify ?? true,
    legalComments: 'none',
    charset: 'utf8',
    write: false,
    logLevel: 'silent',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error('esbuild produced no output for the web tag');
  const code = Buffer.from(file.contents);
  const hash = createHash('sha256').update(code).digest('hex').slice(0, 16);
  return { code, gzip: gzipSync(code, { level: 9 }), hash, etag: `W/"${hash}"` };
}

/** Builds on first use, then answers from memory; a failed build is retried on the next call. */
export function cachedTagBundle(builder: () => Promise<TagBundle> = buildTagBundle): () => Promise<TagBundle> {
  let pending: Promise<TagBundle> | undefined;
  return () =>
    (pending ??= builder().catch((err: unknown) => {
      pending = undefined;
      throw err;
    }));
}
