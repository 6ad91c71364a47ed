// The Data Loader's side of the admin API: check the tenant, send a chunk of rows, read a
// request's receipt. Works the same against an embedded server or a fleet collector; errors
// are LoadApiErrors whose message says what to fix, never a row's content.
import { z } from 'zod';
import type { AttributeSet, LoadSubject } from './load-row.js';

/** NOTE: mirror MAX_LOAD_ROWS / MAX_LOAD_BYTES in services/collector/overwrite-routes.ts. */
export const MAX_CHUNK_ROWS = 5_000;
/** Below the server's 16 MiB body limit, leaving room for the envelope. */
export const MAX_CHUNK_BYTES = 12 * 1024 * 1024;

export interface LoadChunk {
  subject: LoadSubject;
  rows: { id: string; set: AttributeSet }[];
  insertMissing: boolean;
  dryRun: boolean;
}

const loadResponseSchema = z.object({
  requestId: z.string().nullable(),
  accepted: z.number().int().nonnegative(),
  rejected: z.array(z.object({ index: z.number().int().nonnegative(), reason: z.string() })),
  missing: z.number().int().nonnegative(),
  /** the server's note on an accepted request (e.g. no compactor runs to apply it yet) */
  warning: z.string().optional(),
});
export type LoadResponse = z.infer<typeof loadResponseSchema>;

export const RECEIPT_STATUSES = ['pending', 'applied', 'verified', 'failed'] as const;
const receiptSchema = z.object({
  requestId: z.string(),
  status: z.enum(RECEIPT_STATUSES),
  reason: z.string().nullable().optional(),
});
export type LoadReceipt = z.infer<typeof receiptSchema>;

export type LoadApiErrorKind =
  /** no answer: wrong URL, server down, timeout */
  | 'unreachable'
  /** 401: wrong or missing admin token */
  | 'unauthorized'
  /** 404 for the tenant */
  | 'tenant_not_found'
  /** 400/413: the server refused a request as a whole */
  | 'refused'
  /** 5xx, or an answer this client does not understand */
  | 'server';

export class LoadApiError extends Error {
  constructor(
    readonly kind: LoadApiErrorKind,
    message: string,
    /** the network error's code (ECONNREFUSED, …) when there was no answer */
    readonly networkCode?: string,
  ) {
    super(message);
    this.name = 'LoadApiError';
  }
}

export interface LoadClient {
  /** Throws LoadApiError when the server is unreachable, the token is wrong or the tenant unknown. */
  checkTenant(tenantId: string): Promise<void>;
  load(tenantId: string, chunk: LoadChunk): Promise<LoadResponse>;
  /** undefined while the server does not know the request (yet) */
  receipt(requestId: string): Promise<LoadReceipt | undefined>;
}

export interface LoadClientOptions {
  url: string;
  token: string;
  fetch?: typeof fetch;
  /** per HTTP request */
  requestTimeoutMs?: number;
  /** waits before each retry of a request that failed transiently (network error, 429, 502–504) */
  retryDelaysMs?: readonly number[];
}

const RETRIABLE_STATUS = new Set([429, 502, 503, 504]);
/** NOTE: nothing listens there: retrying only delays the error the user needs to see. */
const FATAL_NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);

interface Answer {
  status: number;
  body: unknown;
}

export function createLoadClient(opts: LoadClientOptions): LoadClient {
  const base = opts.url.replace(/\/+$/, '');
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.requestTimeoutMs ?? 120_000;
  const retryDelays = opts.retryDelaysMs ?? [500, 1_000, 2_000];

  async function once(method: string, path: string, body?: unknown): Promise<Answer> {
    let res: Response;
    try {
      res = await doFetch(`${base}${path}`, {
        method,
        headers: { authorization: `Bearer ${opts.token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw networkError(base, timeoutMs, err);
    }
    const text = await res.text().catch(() => '');
    let parsed: unknown = undefined;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON (a proxy's error page): judged by the status alone
    }
    return { status: res.status, body: parsed };
  }

  /** Sends, retrying transient failures. NOTE: a load chunk may be re-sent: applying the same values twice is harmless. */
  async function call(method: string, path: string, body?: unknown): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const delay = retryDelays[attempt];
      try {
        const answer = await once(method, path, body);
        if (!RETRIABLE_STATUS.has(answer.status) || delay === undefined) return answer;
      } catch (err) {
        if (!(err instanceof LoadApiError) || err.kind !== 'unreachable' || delay === undefined || !isTransient(err)) throw err;
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  function failure(answer: Answer, what: string, tenantId?: string): LoadApiError {
    const message = messageOf(answer.body);
    switch (answer.status) {
      case 401:
        return new LoadApiError('unauthorized', `the admin API at ${base} refused the token (401): check TRACKLANE_ADMIN_TOKEN`);
      case 404:
        if (tenantId !== undefined && errorCodeOf(answer.body) === 'not_found') {
          return new LoadApiError('tenant_not_found', `tenant "${tenantId}" does not exist at ${base}`);
        }
        return new LoadApiError('server', `${base} has no ${what} route (404): is the server older than this command?`);
      case 400:
      case 413:
        return new LoadApiError('refused', `the server refused the ${what} (${answer.status})${message ? `: ${message}` : ''}`);
      default:
        return new LoadApiError('server', `the ${what} failed with HTTP ${answer.status}${message ? `: ${message}` : ''}`);
    }
  }

  return {
    async checkTenant(tenantId) {
      const answer = await call('GET', `/v1/admin/tenants/${encodeURIComponent(tenantId)}/flags`);
      if (answer.status === 400) throw new LoadApiError('tenant_not_found', `"${tenantId}" is not a valid tenant id${answer.body ? `: ${messageOf(answer.body)}` : ''}`);
      if (answer.status !== 200) throw failure(answer, 'tenant lookup', tenantId);
    },

    async load(tenantId, chunk) {
      const answer = await call('POST', `/v1/admin/tenants/${encodeURIComponent(tenantId)}/loads`, chunk);
      if (answer.status !== 200 && answer.status !== 202) throw failure(answer, 'load request', tenantId);
      const parsed = loadResponseSchema.safeParse(answer.body);
      if (!parsed.success) throw new LoadApiError('server', `unexpected answer to a load request from ${base}`);
      return parsed.data;
    },

    async receipt(requestId) {
      const answer = await call('GET', `/v1/admin/requests/${encodeURIComponent(requestId)}`);
      if (answer.status === 404 && errorCodeOf(answer.body) === 'not_found') return undefined;
      if (answer.status !== 200) throw failure(answer, 'receipt lookup');
      const parsed = receiptSchema.safeParse(answer.body);
      if (!parsed.success) throw new LoadApiError('server', `unexpected receipt from ${base}`);
      return parsed.data;
    },
  };
}

function networkError(base: string, timeoutMs: number, err: unknown): LoadApiError {
  const e = err as Error & { cause?: { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') {
    return new LoadApiError('unreachable', `no answer from the admin API at ${base} within ${Math.round(timeoutMs / 1000)} s`);
  }
  const code = e.cause?.code ?? (err as NodeJS.ErrnoException).code;
  return new LoadApiError('unreachable', `cannot reach the admin API at ${base}${code ? ` (${code})` : `: ${e.message}`}`, code);
}

function isTransient(err: LoadApiError): boolean {
  return err.networkCode === undefined || !FATAL_NETWORK_CODES.has(err.networkCode);
}

function messageOf(body: unknown): string {
  const m = (body as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : '';
}

function errorCodeOf(body: unknown): string {
  const e = (body as { error?: unknown } | undefined)?.error;
  return typeof e === 'string' ? e : '';
}
