// Who is calling the admin API, and may they (DESIGN.md §8): the operator token (everything,
// every tenant — only on a listener that accepts it), tenant API keys with scopes, and a
// per-address brake on failed authentications. Routes declare what they need; this module
// alone decides.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { API_KEY_RE, type Scope } from '../../libs/tenants/tenant-keys.js';
import type { TenantStore } from '../../libs/tenants/tenant-store.js';

export type Principal =
  | { kind: 'operator'; keyId: 'operator' }
  | { kind: 'api_key'; tenantId: string; keyId: string; scopes: readonly Scope[] };

/** What a route needs: the operator, or a tenant key holding `scope` ('any': read or admin). */
export type Access = { operator: true } | { scope: Scope | 'any' };

export type AuthOutcome = { ok: true; principal: Principal } | { ok: false; status: 401 | 503; message: string; counted: boolean };

export interface AuthenticatorOptions {
  /** the operator token, or null where this listener must refuse it (the public edge) */
  operatorToken: string | null;
  tenants: Pick<TenantStore, 'apiKey' | 'credentialsAvailable'>;
}

export function createAuthenticator(opts: AuthenticatorOptions): (authorization: string | undefined) => AuthOutcome {
  const operator = opts.operatorToken === null ? null : digest(opts.operatorToken);
  return (authorization) => {
    if (!authorization?.startsWith('Bearer ')) {
      return { ok: false, status: 401, message: 'admin routes need Authorization: Bearer <tenant API key or operator token>', counted: false };
    }
    const token = authorization.slice(7).trim();
    if (API_KEY_RE.test(token)) {
      const match = opts.tenants.apiKey(token);
      if (match) return { ok: true, principal: { kind: 'api_key', tenantId: match.tenant.tenantId, keyId: match.key.keyId, scopes: match.key.scopes } };
      // NOTE: fail closed while a revocation elsewhere may be unknown here: 503, not a guess.
      if (opts.tenants.credentialsAvailable?.() === false) {
        return { ok: false, status: 503, message: 'credentials cannot be checked right now; retry shortly', counted: false };
      }
      return { ok: false, status: 401, message: 'unknown or revoked API key', counted: true };
    }
    // NOTE: compare digests so the comparison is constant-time whatever the lengths.
    if (operator !== null && timingSafeEqual(digest(token), operator)) return { ok: true, principal: { kind: 'operator', keyId: 'operator' } };
    return {
      ok: false,
      status: 401,
      message: operator === null ? 'this listener accepts tenant API keys only' : 'unknown credential',
      counted: true,
    };
  };
}

export type AccessOutcome = { ok: true } | { ok: false; status: 403 | 404; error: string; message: string };

/**
 * May `principal` use a route needing `access` on `tenantId` (undefined: the route names no
 * tenant)? A key of another tenant gets the same 404 as a tenant that does not exist, so
 * whether a tenant exists is never revealed to it.
 */
export function checkAccess(principal: Principal, access: Access, tenantId: string | undefined): AccessOutcome {
  if (principal.kind === 'operator') return { ok: true };
  if ('operator' in access) return { ok: false, status: 403, error: 'forbidden', message: 'this route needs the operator token' };
  if (tenantId !== undefined && tenantId !== principal.tenantId) return tenantNotFound(tenantId);
  if (access.scope === 'any' || principal.scopes.includes(access.scope)) return { ok: true };
  return { ok: false, status: 403, error: 'forbidden', message: `this key lacks the "${access.scope}" scope` };
}

export function tenantNotFound(tenantId: string): { ok: false; status: 404; error: string; message: string } {
  return { ok: false, status: 404, error: 'not_found', message: `tenant "${tenantId}" does not exist` };
}

/** Whether `principal` may hand out `scopes` (a key never grants more than its creator holds). */
export function mayGrant(principal: Principal, scopes: readonly Scope[]): boolean {
  return principal.kind === 'operator' || scopes.every((s) => principal.scopes.includes(s));
}

export interface FailureLimiterOptions {
  /** failures within `windowMs` that block an address; default 20 */
  maxFailures?: number;
  windowMs?: number;
  /** how long a blocked address gets 429; default 60 s */
  blockMs?: number;
  now?: () => number;
  /** addresses tracked at once (least recently seen forgotten first); default 10,000 */
  maxAddresses?: number;
}

export interface FailureLimiter {
  /** ms until `address` may try again, 0 when it may now */
  retryAfterMs(address: string): number;
  /** counts a failed authentication of `address` */
  fail(address: string): void;
}

/** Per replica, in memory: an address with too many failed authentications waits a minute. */
export function createFailureLimiter(opts: FailureLimiterOptions = {}): FailureLimiter {
  const max = opts.maxFailures ?? 20;
  const windowMs = opts.windowMs ?? 60_000;
  const blockMs = opts.blockMs ?? 60_000;
  const now = opts.now ?? Date.now;
  const seen = new LRUCache<string, { failures: number[]; blockedUntil: number }>({ max: opts.maxAddresses ?? 10_000 });
  return {
    retryAfterMs(address) {
      const s = seen.get(address);
      return s === undefined ? 0 : Math.max(0, s.blockedUntil - now());
    },
    fail(address) {
      const t = now();
      const s = seen.get(address) ?? { failures: [], blockedUntil: 0 };
      s.failures = s.failures.filter((f) => f > t - windowMs);
      s.failures.push(t);
      if (s.failures.length >= max) {
        s.blockedUntil = t + blockMs;
        s.failures = [];
      }
      seen.set(address, s);
    },
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

/**
 * The admin plugin's onRequest hook: refuses blocked addresses (429), missing or bad
 * credentials (401, counted), an unreadable credential store (503); sets req.principal.
 */
export function authenticateHook(authenticate: ReturnType<typeof createAuthenticator>, limiter: FailureLimiter) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const wait = limiter.retryAfterMs(req.ip);
    if (wait > 0) {
      return reply
        .code(429)
        .header('retry-after', String(Math.ceil(wait / 1000)))
        .send({ error: 'too_many_failures', message: 'too many failed authentications from this address; retry later' });
    }
    const outcome = authenticate(req.headers.authorization);
    if (!outcome.ok) {
      if (outcome.counted) limiter.fail(req.ip);
      if (outcome.status === 503) return reply.code(503).header('retry-after', '1').send({ error: 'unavailable', message: outcome.message });
      return reply.code(401).header('www-authenticate', 'Bearer realm="tracklane-admin"').send({ error: 'unauthorized', message: outcome.message });
    }
    req.principal = outcome.principal;
    return undefined;
  };
}

/** A route's preHandler: the principal must have `access` on the route's `:tenantId`, if any. */
export function requireAccess(access: Access) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const principal = req.principal;
    if (principal == null) return reply.code(401).send({ error: 'unauthorized', message: 'no credential' });
    const tenantId = (req.params as { tenantId?: string }).tenantId;
    const outcome = checkAccess(principal, access, tenantId);
    if (!outcome.ok) return reply.code(outcome.status).send({ error: outcome.error, message: outcome.message });
    return undefined;
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
