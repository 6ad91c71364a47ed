// Account attribution: an explicit account id wins; otherwise the registrable domain of the
// user's work email (eng.acme.co.uk → acme.co.uk), never for free-mail or disposable domains.
import { createRequire } from 'node:module';
import { parse } from 'tldts';
import type { InferredAccount } from '../events/envelope.js';

export const EMAIL_DOMAIN_CONFIDENCE = 0.8;

export interface InferAccountInput {
  explicitAccountId: string | null | undefined;
  email: string | null | undefined;
}

function loadDomainSet(spec: string): ReadonlySet<string> {
  const list: unknown = createRequire(import.meta.url)(spec);
  if (!Array.isArray(list)) throw new Error(`${spec}: expected a JSON array of domains`);
  return new Set(list.filter((d): d is string => typeof d === 'string').map((d) => d.trim().toLowerCase()));
}

let freeMail: ReadonlySet<string> | undefined;
let disposable: ReadonlySet<string> | undefined;

/** Free-mail (email-providers all.json) and disposable (disposable-email-domains) sets, built once. */
export function isPersonalEmailDomain(domain: string): boolean {
  freeMail ??= loadDomainSet('email-providers/all.json');
  disposable ??= loadDomainSet('disposable-email-domains/index.json');
  return freeMail.has(domain) || disposable.has(domain);
}

// NOTE: per email host, bounded; real traffic has few distinct domains per tenant.
const hostCache = new Map<string, string | null>();
const HOST_CACHE_MAX = 10_000;

/** Registrable company domain of an email host, or null (free-mail, disposable, IP literal, no ICANN suffix). */
export function companyDomain(host: string): string | null {
  const cached = hostCache.get(host);
  if (cached !== undefined) return cached;
  let result: string | null = null;
  const p = parse(host, { allowPrivateDomains: false });
  if (!p.isIp && p.isIcann === true && p.domain !== null && p.hostname === host) {
    result = isPersonalEmailDomain(host) || isPersonalEmailDomain(p.domain) ? null : p.domain;
  }
  if (hostCache.size >= HOST_CACHE_MAX) hostCache.clear();
  hostCache.set(host, result);
  return result;
}

/** Lowercased, trimmed host part of a plausible email address, or null. */
export function emailHost(email: string): string | null {
  const e = email.trim().toLowerCase();
  const at = e.lastIndexOf('@');
  if (at <= 0 || at === e.length - 1) return null;
  const host = e.slice(at + 1);
  // TRICKY: `user@[1.2.3.4]` literals and anything with spaces or a second '@' is not an address we infer from.
  if (host.charCodeAt(0) === 91 /* [ */ || e.indexOf('@') !== at || /\s/.test(e)) return null;
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

export function inferAccount(input: InferAccountInput): InferredAccount | null {
  const host = input.email ? emailHost(input.email) : null;
  const domain = host === null ? null : companyDomain(host);
  const explicit = input.explicitAccountId?.trim();
  if (explicit) return { account_id: explicit, domain, source: 'explicit', confidence: 1 };
  if (domain === null) return null;
  return { account_id: domain, domain, source: 'email_domain', confidence: EMAIL_DOMAIN_CONFIDENCE };
}
