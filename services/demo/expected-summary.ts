// What the pipeline must show once every generated event has arrived, recounted from the
// batches themselves: counts by type, tenant and country, sessions, users, accounts, scrubbing.
import { COMPANIES, COUNTRY_IPS, FREE_MAIL_DOMAINS } from './fixtures.js';
import { SEGMENT_MESSAGE_TYPES, type SegmentMessageType, type TrafficBatch } from './segment-types.js';

export interface AnonymizationExpectation {
  /** tenant whose anonymize_identity flag the runner switches on before `switchIndex` */
  tenant: string;
  switchIndex: number;
  /** tenants that never anonymize: no pseudonymized identity may show up for them */
  clearTenants: string[];
  /** events carrying a userId in batches before / from `switchIndex` */
  identifiedEventsBefore: number;
  identifiedEventsAfter: number;
  /** distinct userIds in batches before / from `switchIndex` (users may be in both) */
  identifiedUsersBefore: number;
  identifiedUsersAfter: number;
}

export interface ExpectedSummary {
  totalEvents: number;
  byType: Record<SegmentMessageType, number>;
  byTenant: Record<string, number>;
  /** country of each event's context.ip as assigned by the generator (fixtures.ts) */
  byCountry: Record<string, number>;
  sessionsByTenant: Record<string, number>;
  identifiedUsersByTenant: Record<string, number>;
  identifiedEventsByTenant: Record<string, number>;
  /**
   * registrable domains of company emails in identify traits, from identify calls without an
   * explicit account (context.groupId): an explicit account wins; free-mail infers nothing
   */
  inferredAccountsByTenant: Record<string, string[]>;
  /** groupIds of group calls and of identify's context.groupId */
  explicitAccountsByTenant: Record<string, string[]>;
  identifiedUsersByEmailKind: { company: number; freeMail: number };
  /** messages whose page url or referrer carries an email the collector must scrub */
  messagesWithEmailInUrl: number;
  anonymization: AnonymizationExpectation;
}

/** IP → ISO country as the fixtures assign it (and as DB-IP Lite maps it; see the test). */
export const IP_COUNTRY: ReadonlyMap<string, string> = new Map(
  COUNTRY_IPS.flatMap((c) => c.ips.map((ip) => [ip, c.country] as const)),
);

const FREE_MAIL = new Set(FREE_MAIL_DOMAINS);
const MAIL_HOST_DOMAIN: ReadonlyMap<string, string> = new Map(
  COMPANIES.flatMap((c) => c.mailHosts.map((h) => [h, c.domain] as const)),
);

/** The registrable domain an email's account should be inferred from; null for free-mail. */
export function expectedInferredDomain(email: string): string | null {
  const host = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  if (FREE_MAIL.has(host)) return null;
  return MAIL_HOST_DOMAIN.get(host) ?? null;
}

const EMAIL_IN_TEXT = /[A-Za-z0-9._%+-]+(@|%40)[A-Za-z0-9.-]+\.[A-Za-z]{2,}/;

export function containsEmail(text: string): boolean {
  return EMAIL_IN_TEXT.test(text);
}

function increment(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

/** Recounts what the pipeline must show from the batches actually produced. */
export function summarizeTraffic(batches: TrafficBatch[], tenants: string[], switchIndex: number): ExpectedSummary {
  const byType = Object.fromEntries(SEGMENT_MESSAGE_TYPES.map((t) => [t, 0])) as Record<SegmentMessageType, number>;
  const byTenant: Record<string, number> = {};
  const byCountry: Record<string, number> = {};
  const sessions = new Map<string, Set<string>>();
  const users = new Map<string, Set<string>>();
  const identifiedEvents: Record<string, number> = {};
  const inferred = new Map<string, Set<string>>();
  const explicit = new Map<string, Set<string>>();
  const emailKind = new Map<string, 'company' | 'freeMail'>();
  const switchTenant = tenants[1] ?? '';
  const usersBefore = new Set<string>();
  const usersAfter = new Set<string>();
  let before = 0;
  let after = 0;
  let withEmail = 0;
  const setFor = (m: Map<string, Set<string>>, tenant: string): Set<string> => {
    let s = m.get(tenant);
    if (!s) m.set(tenant, (s = new Set()));
    return s;
  };
  for (const t of tenants) {
    byTenant[t] = 0;
    identifiedEvents[t] = 0;
  }
  batches.forEach((batch, index) => {
    const tenant = batch.tenant;
    for (const m of batch.messages) {
      byType[m.type]++;
      increment(byTenant, tenant);
      increment(byCountry, IP_COUNTRY.get(m.context.ip) ?? 'unknown');
      if (m.context.sessionId) setFor(sessions, tenant).add(m.context.sessionId);
      if (containsEmail(m.context.page.url) || containsEmail(m.context.page.referrer)) withEmail++;
      if (m.userId) {
        setFor(users, tenant).add(m.userId);
        increment(identifiedEvents, tenant);
        if (tenant === switchTenant) {
          if (index < switchIndex) {
            before++;
            usersBefore.add(m.userId);
          } else {
            after++;
            usersAfter.add(m.userId);
          }
        }
      }
      if (m.type === 'identify' && typeof m.traits?.['email'] === 'string') {
        const domain = expectedInferredDomain(m.traits['email']);
        if (domain && !m.context.groupId) setFor(inferred, tenant).add(domain);
        if (m.userId) emailKind.set(`${tenant}\u0000${m.userId}`, domain ? 'company' : 'freeMail');
        if (m.context.groupId) setFor(explicit, tenant).add(m.context.groupId);
      }
      if (m.type === 'group' && m.groupId) setFor(explicit, tenant).add(m.groupId);
    }
  });
  const perTenant = <T>(f: (t: string) => T): Record<string, T> => Object.fromEntries(tenants.map((t) => [t, f(t)]));
  const sorted = (m: Map<string, Set<string>>, t: string): string[] => [...(m.get(t) ?? [])].sort();
  const kinds = [...emailKind.values()];
  return {
    totalEvents: batches.reduce((s, b) => s + b.messages.length, 0),
    byType,
    byTenant,
    byCountry,
    sessionsByTenant: perTenant((t) => sessions.get(t)?.size ?? 0),
    identifiedUsersByTenant: perTenant((t) => users.get(t)?.size ?? 0),
    identifiedEventsByTenant: identifiedEvents,
    inferredAccountsByTenant: perTenant((t) => sorted(inferred, t)),
    explicitAccountsByTenant: perTenant((t) => sorted(explicit, t)),
    identifiedUsersByEmailKind: {
      company: kinds.filter((k) => k === 'company').length,
      freeMail: kinds.filter((k) => k === 'freeMail').length,
    },
    messagesWithEmailInUrl: withEmail,
    anonymization: {
      tenant: switchTenant,
      switchIndex,
      clearTenants: tenants.filter((t) => t !== switchTenant),
      identifiedEventsBefore: before,
      identifiedEventsAfter: after,
      identifiedUsersBefore: usersBefore.size,
      identifiedUsersAfter: usersAfter.size,
    },
  };
}
