// Serves the web tag: GET /tag.js (bundled from libs/tag on the first request, then from
// memory; ETag, gzip, a day of caching plus a week of stale-while-revalidate, a year for
// the content-addressed /tag.js?v=<hash>) and, only when enabled, the tag's test page.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { buildTagBundle, cachedTagBundle, tagSourceDir, type TagBundle } from '../../libs/tag/build-tag.js';

export interface TagRouteOptions {
  /**
   * Serves libs/tag/test-page.html at /tag/test-page (and below it) for browser tests and
   * demos. Off by default: it is not a production page.
   */
  testPage?: boolean;
  /** the bundle source; default: esbuild on libs/tag/src, built once */
  bundle?: () => Promise<TagBundle>;
}

export const TAG_CACHE_CONTROL = 'public, max-age=86400, stale-while-revalidate=604800';
export const TAG_IMMUTABLE_CACHE_CONTROL = 'public, max-age=31536000, immutable';

export function registerTagRoutes(app: FastifyInstance, opts: TagRouteOptions = {}): void {
  const bundle = opts.bundle ?? cachedTagBundle(buildTagBundle);

  app.get('/tag.js', async (req, reply) => {
    const b = await bundle();
    const version = (req.query as Record<string, unknown> | undefined)?.['v'];
    reply
      .header('etag', b.etag)
      .header('cache-control', version === b.hash ? TAG_IMMUTABLE_CACHE_CONTROL : TAG_CACHE_CONTROL)
      .header('vary', 'accept-encoding')
      .header('x-content-type-options', 'nosniff')
      // NOTE: lets sites load it with `crossorigin` + Subresource Integrity.
      .header('access-control-allow-origin', '*');
    if (matchesEtag(req.headers['if-none-match'], b.etag)) return reply.code(304).send();
    reply.type('text/javascript; charset=utf-8');
    if (acceptsGzip(req)) return reply.header('content-encoding', 'gzip').send(b.gzip);
    return reply.send(b.code);
  });

  if (opts.testPage) {
    let page: Promise<string> | undefined;
    const html = () => (page ??= readFile(join(tagSourceDir(), '..', 'test-page.html'), 'utf8'));
    const serve = async (_req: FastifyRequest, reply: FastifyReply) =>
      reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(await html());
    app.register(async (scope) => {
      // NOTE: the page's form posts back to the page; its fields are discarded unread.
      scope.addContentTypeParser(['application/x-www-form-urlencoded', 'multipart/form-data'], { parseAs: 'buffer' }, (_req, _body, done) =>
        done(null, null),
      );
      for (const url of ['/tag/test-page', '/tag/test-page/*']) {
        scope.get(url, serve);
        scope.post(url, serve);
      }
    });
  }
}

/** If-None-Match holds `etag` (weak comparison) or `*`. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const strip = (t: string) => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || strip(t) === strip(etag));
}

function acceptsGzip(req: FastifyRequest): boolean {
  const h = req.headers['accept-encoding'];
  return typeof h === 'string' && /\bgzip\b(?!\s*;\s*q=0(?:\.0*)?\s*(?:,|$))/i.test(h);
}
