// CORS for the ingestion routes only, so the web tag can post from the customers' own
// origins. No credentials are involved (the write key is public: body `writeKey` or HTTP
// Basic), so any origin is allowed with `*`. The admin API gets no CORS headers: a browser
// page on another origin can neither read its answers nor send it a preflighted request.
import type { FastifyInstance } from 'fastify';

export const CORS_MAX_AGE_SECONDS = 86_400;

/** Must be called before the routes of `paths` are registered (the hook applies from then on). */
export function registerIngestCors(app: FastifyInstance, paths: readonly string[]): void {
  const ingest = new Set(paths);
  // NOTE: onRequest, so error answers (400, 401, 413, 503) carry the header too: the tag must
  // read their status to tell a permanent refusal from a retriable failure.
  app.addHook('onRequest', async (req, reply) => {
    if (ingest.has(req.routeOptions.url ?? '')) reply.header('access-control-allow-origin', '*');
  });
  for (const path of paths) {
    app.options(path, async (_req, reply) =>
      reply
        .code(204)
        .header('access-control-allow-origin', '*')
        .header('access-control-allow-methods', 'POST, OPTIONS')
        .header('access-control-allow-headers', 'content-type, authorization, content-encoding')
        .header('access-control-max-age', String(CORS_MAX_AGE_SECONDS))
        .send(),
    );
  }
}
