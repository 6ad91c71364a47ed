// Request body parsing for the ingestion routes: JSON (also sent as text/plain by beacons),
// optionally gzip-compressed, with a cap on the decompressed size so a gzip bomb is refused
// before it is inflated in memory.
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

export class BodyError extends Error {
  constructor(
    readonly statusCode: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
    this.name = 'BodyError';
  }
}

export async function decodeBody(raw: Buffer, encoding: string | undefined, maxDecompressedBytes: number): Promise<unknown> {
  const enc = (encoding ?? 'identity').trim().toLowerCase();
  let body: Buffer;
  if (enc === 'identity' || enc === '') {
    body = raw;
  } else if (enc === 'gzip' || enc === 'deflate') {
    try {
      const opts = { maxOutputLength: maxDecompressedBytes };
      body = enc === 'gzip' ? await gunzipAsync(raw, opts) : await inflateAsync(raw, opts);
    } catch (err) {
      if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new BodyError(413, `decompressed body exceeds ${maxDecompressedBytes} bytes`);
      }
      throw new BodyError(400, `body is not valid ${enc} data`);
    }
  } else {
    throw new BodyError(415, `unsupported content-encoding "${enc}"; use gzip, deflate or none`);
  }
  if (body.length === 0) throw new BodyError(400, 'request body is empty');
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (err) {
    throw new BodyError(400, `invalid JSON: ${(err as Error).message}`);
  }
}

/** Registers the JSON parser (for application/json and text/plain) on a fastify instance. */
export function registerBodyParser(app: FastifyInstance, maxDecompressedBytes: number): void {
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser(
    ['application/json', 'text/plain'],
    { parseAs: 'buffer' },
    (req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
      decodeBody(body, req.headers['content-encoding'], maxDecompressedBytes).then(
        (parsed) => done(null, parsed),
        (err: Error) => done(err),
      );
    },
  );
}
