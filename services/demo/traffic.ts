// Deterministic synthetic traffic for `tracklane demo`: visitors with sessions, page views,
// clicks, custom events, identify and group calls, cut into /v1/batch payloads, plus the
// summary the pipeline must reproduce when every event arrives.
import {
  APP_PAGES,
  BUTTONS,
  COMPANIES,
  COUNTRY_IPS,
  EXTERNAL_REFERRERS,
  FIRST_NAMES,
  FREE_MAIL_DOMAINS,
  FREEMAIL_WORKSPACES,
  LAST_NAMES,
  LINKS,
  PII_LANDING_PATHS,
  TRACK_EVENTS,
  USER_AGENTS,
  UTM_SOURCES,
  type ClickElement,
  type CompanyFixture,
  type CountryIps,
  type PageFixture,
  type UserAgentFixture,
} from './fixtures.js';

export type { ClickElement } from './fixtures.js';

/** Segment's limits for one /v1/batch request. */
export const MAX_BATCH_MESSAGES = 100;
export const MAX_BATCH_BYTES = 500_000;
/** Room left in a batch for `{"batch":[…],"sentAt":"…"}` around the messages. */
const BATCH_ENVELOPE_BYTES = 64;

const HOUR_MS = 3_600_000;
const WINDOW_MS = 3 * 24 * HOUR_MS;

export const SEGMENT_MESSAGE_TYPES = [
  'identify',
  'track',
  'page',
  'group',
  'session_start',
  'session_end',
  'click',
  'link',
] as const;
export type SegmentMessageType = (typeof SEGMENT_MESSAGE_TYPES)[number];

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

// NOTE: a type alias, not an interface, so it is assignable to JsonObject (page properties).
export type SegmentPage = {
  url: string;
  path: string;
  referrer: string;
  title: string;
  search: string;
};

export interface SegmentContext {
  ip: string;
  userAgent: string;
  page: SegmentPage;
  sessionId?: string;
  /** explicit account on identify calls */
  groupId?: string;
  locale: string;
  timezone: string;
  screen: { width: number; height: number };
  library: { name: string; version: string };
}

export interface SegmentMessage {
  type: SegmentMessageType;
  messageId: string;
  anonymousId: string;
  userId?: string;
  timestamp: string;
  context: SegmentContext;
  properties?: JsonObject;
  traits?: JsonObject;
  groupId?: string;
  event?: string;
  name?: string;
}

export interface TrafficBatch {
  tenant: string;
  messages: SegmentMessage[];
}

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
  /** registrable domains of company emails in identify traits; free-mail infers nothing */
  inferredAccountsByTenant: Record<string, string[]>;
  /** groupIds of group calls and of identify's context.groupId */
  explicitAccountsByTenant: Record<string, string[]>;
  identifiedUsersByEmailKind: { company: number; freeMail: number };
  /** messages whose page url or referrer carries an email the collector must scrub */
  messagesWithEmailInUrl: number;
  anonymization: AnonymizationExpectation;
}

export interface GeneratedTraffic {
  batches: TrafficBatch[];
  expected: ExpectedSummary;
  switchIndex: number;
}

export interface TrafficOptions {
  seed?: number;
  events: number;
  tenants: string[];
  startMs: number;
}

export interface Random {
  /** uniform in [0, 1) */
  next(): number;
  /** integer in [min, max] */
  int(min: number, max: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  weighted<T extends { weight: number }>(items: readonly T[]): T;
  hex(chars: number): string;
}

/** mulberry32: tiny, fast, good enough for synthetic data, identical on every platform. */
export function createRandom(seed: number): Random {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => {
    const item = items[Math.floor(next() * items.length)];
    if (item === undefined) throw new RangeError('pick from an empty list');
    return item;
  };
  return {
    next,
    int,
    chance: (p) => next() < p,
    pick,
    weighted: (items) => {
      const total = items.reduce((s, i) => s + i.weight, 0);
      let r = next() * total;
      for (const item of items) {
        r -= item.weight;
        if (r < 0) return item;
      }
      return pick(items);
    },
    hex: (chars) => {
      let s = '';
      while (s.length < chars) s += Math.floor(next() * 0x10000).toString(16).padStart(4, '0');
      return s.slice(0, chars);
    },
  };
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

interface Person {
  userId: string;
  firstName: string;
  lastName: string;
  email: string;
  company: CompanyFixture | null;
  /** explicit account joined with a group call, if any */
  group: { groupId: string; name: string; industry?: string; employees?: number } | null;
  /** identify carries the account as context.groupId */
  groupOnIdentify: boolean;
  createdAt: string;
  plan: string;
}

interface Visitor {
  tenantIndex: number;
  anonymousId: string;
  ip: string;
  geo: CountryIps;
  agent: UserAgentFixture;
  host: string;
  projectIds: number[];
  person: Person | null;
}

type Step =
  | { kind: 'session_start' }
  | { kind: 'session_end' }
  | { kind: 'page'; path: string; title: string; name: string }
  | { kind: 'click'; element: ClickElement }
  | { kind: 'link'; element: ClickElement }
  | { kind: 'track'; event: string; properties: JsonObject }
  | { kind: 'identify' }
  | { kind: 'group' };

interface Draft {
  ms: number;
  seq: number;
  message: SegmentMessage;
}

const TENANT_HOSTS = ['https://app.projectly.io', 'https://app.ledgerline.com'];
const LIBRARY = { name: 'tracklane-demo', version: '0.1.0' } as const;

function asciiSlug(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z]/g, '');
}

function uuidV4(rng: Random): string {
  const h = rng.hex(32);
  const variant = ((rng.int(0, 3) | 8) >>> 0).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function createPerson(rng: Random, userNumber: number, companyFirst: CompanyFixture | null, startMs: number): Person {
  const firstName = rng.pick(FIRST_NAMES);
  const lastName = rng.pick(LAST_NAMES);
  const first = asciiSlug(firstName);
  const last = asciiSlug(lastName);
  const createdAt = new Date(startMs - rng.int(5, 400) * 24 * HOUR_MS).toISOString();
  const plan = rng.pick(['free', 'starter', 'pro', 'business']);
  if (companyFirst) {
    const host = rng.pick(companyFirst.mailHosts);
    const local = rng.chance(0.7) ? `${first}.${last}` : `${first.charAt(0)}${last}`;
    return {
      userId: `user_${userNumber}`,
      firstName,
      lastName,
      email: `${local}@${host}`,
      company: companyFirst,
      group: rng.chance(0.6)
        ? {
            groupId: companyFirst.groupId,
            name: companyFirst.name,
            industry: companyFirst.industry,
            employees: companyFirst.employees,
          }
        : null,
      groupOnIdentify: rng.chance(0.25),
      createdAt,
      plan,
    };
  }
  const domain = rng.pick(FREE_MAIL_DOMAINS);
  const local = rng.chance(0.5) ? `${first}.${last}${rng.int(1, 99)}` : `${first}${last}${rng.int(70, 99)}`;
  return {
    userId: `user_${userNumber}`,
    firstName,
    lastName,
    email: `${local}@${domain}`,
    company: null,
    group: rng.chance(0.35) ? rng.pick(FREEMAIL_WORKSPACES) : null,
    groupOnIdentify: false,
    createdAt,
    plan,
  };
}

function resolvePath(path: string, visitor: Visitor, rng: Random): string {
  return path.replace('{id}', String(rng.pick(visitor.projectIds)));
}

function pageFromPath(path: string): PageFixture | undefined {
  const bare = path.replace(/\/\d+(?=\/|$|\?)/g, '/{id}');
  return APP_PAGES.find((p) => p.path === bare);
}

function trackStep(rng: Random, visitor: Visitor): Step {
  const { event } = rng.weighted(TRACK_EVENTS);
  const projectId = `prj_${rng.pick(visitor.projectIds)}`;
  const properties = ((): JsonObject => {
    switch (event) {
      case 'Project Created':
        return { projectId: `prj_${rng.int(100, 999)}`, template: rng.pick(['blank', 'kanban', 'roadmap', 'sprint']) };
      case 'Task Completed':
        return { projectId, taskId: `task_${rng.int(1000, 99999)}`, priority: rng.pick(['low', 'medium', 'high']) };
      case 'Report Exported':
        return { reportId: `rep_${rng.int(10, 400)}`, format: rng.pick(['csv', 'pdf', 'xlsx']), range: rng.pick(['7d', '30d', '90d']) };
      case 'Invite Sent':
        return { role: rng.pick(['viewer', 'editor', 'admin']), seatsUsed: rng.int(2, 40) };
      case 'Integration Connected':
        return { provider: rng.pick(['slack', 'github', 'jira', 'google-drive']) };
      case 'Plan Upgraded':
        return { fromPlan: 'starter', toPlan: rng.pick(['pro', 'business']), seats: rng.int(3, 50), billingCycle: rng.pick(['monthly', 'annual']) };
      default:
        return { filter: rng.pick(['status', 'assignee', 'due', 'label']), projectId };
    }
  })();
  return { kind: 'track', event, properties };
}

/** Plans one session as steps; identification decides whether identify/group calls appear. */
function planSession(rng: Random, visitor: Visitor, identifyHere: boolean, landing: 'pii' | 'utm' | 'plain'): Step[] {
  const steps: Step[] = [{ kind: 'session_start' }];
  const person = visitor.person;
  const pageCount = rng.int(2, 9);
  let nextPath: string | null = null;
  for (let i = 0; i < pageCount; i++) {
    if (i === 0 && landing === 'pii' && person) {
      const pii = rng.pick(PII_LANDING_PATHS);
      // TRICKY: half encoded, half raw: the collector's scrub must catch both spellings.
      const email = rng.chance(0.5) ? encodeURIComponent(person.email) : person.email;
      const utm = `utm_source=${rng.pick(UTM_SOURCES)}&utm_medium=email&utm_campaign=${rng.pick(['q3-launch', 'weekly-digest', 'reactivation'])}`;
      steps.push({ kind: 'page', path: `${pii.path}?email=${email}&${utm}`, title: pii.title, name: pii.name });
    } else {
      const fixture = nextPath ? pageFromPath(nextPath) : undefined;
      const page = fixture ?? rng.weighted(APP_PAGES);
      let path = nextPath && fixture ? nextPath : resolvePath(page.path, visitor, rng);
      if (i === 0 && landing === 'utm') {
        path += `${path.includes('?') ? '&' : '?'}utm_source=${rng.pick(UTM_SOURCES)}&utm_medium=cpc`;
      }
      steps.push({ kind: 'page', path, title: page.title, name: page.name });
    }
    nextPath = null;
    if (i === 0 && identifyHere && person) {
      steps.push({ kind: 'identify' });
      if (person.group) steps.push({ kind: 'group' });
    }
    const interactions = rng.weighted([
      { n: 0, weight: 25 },
      { n: 1, weight: 35 },
      { n: 2, weight: 25 },
      { n: 3, weight: 15 },
    ]).n;
    for (let k = 0; k < interactions; k++) {
      const r = rng.next();
      if (r < 0.45) {
        const button = rng.pick(BUTTONS);
        steps.push({
          kind: 'click',
          element: { tag: 'BUTTON', id: button.id, classes: [...button.classes], label: button.label, href: null },
        });
      } else if (r < 0.7) {
        const link = rng.pick(LINKS);
        const href = link.href ? resolvePath(link.href, visitor, rng) : null;
        steps.push({ kind: 'link', element: { tag: 'A', id: link.id, classes: [...link.classes], label: link.label, href } });
        // NOTE: an internal link navigates, so it ends this page and names the next one.
        if (href?.startsWith('/') && i < pageCount - 1) {
          nextPath = href;
          break;
        }
      } else {
        steps.push(trackStep(rng, visitor));
      }
    }
  }
  steps.push({ kind: 'session_end' });
  return steps;
}

/** Keeps the session's shape when the event budget runs out: start, some steps, end. */
function trimSession(steps: Step[], budget: number): Step[] {
  if (steps.length <= budget) return steps;
  if (budget <= 1) return steps.slice(0, budget);
  return [...steps.slice(0, budget - 1), { kind: 'session_end' }];
}

interface SessionState {
  userId: string | undefined;
  seq: number;
}

function materializeSession(
  rng: Random,
  visitor: Visitor,
  steps: Step[],
  sessionStartMs: number,
  state: SessionState,
  idPrefix: string,
): { drafts: Draft[]; endMs: number } {
  const sessionId = rng.hex(16);
  const drafts: Draft[] = [];
  let ms = sessionStartMs;
  let referrer = rng.pick(EXTERNAL_REFERRERS);
  const toPage = (step: { path: string; title: string }): SegmentPage => {
    const q = step.path.indexOf('?');
    return {
      url: `${visitor.host}${step.path}`,
      path: q < 0 ? step.path : step.path.slice(0, q),
      referrer,
      title: step.title,
      search: q < 0 ? '' : step.path.slice(q),
    };
  };
  // session_start fires on the landing page, before its page view.
  const landing = steps.find((s) => s.kind === 'page');
  let page: SegmentPage = landing?.kind === 'page' ? toPage(landing) : toPage({ path: '/dashboard', title: 'Dashboard' });
  let pageViews = 0;
  const person = visitor.person;
  for (const step of steps) {
    if (step.kind === 'page') {
      ms += rng.int(4, 120) * 1000;
      page = toPage(step);
      referrer = page.url;
      pageViews++;
    } else {
      ms += rng.int(1, 40) * 1000;
    }
    if (step.kind === 'identify' && person) state.userId = person.userId;
    const context: SegmentContext = {
      ip: visitor.ip,
      userAgent: visitor.agent.ua,
      page: { ...page },
      sessionId,
      locale: visitor.geo.locale,
      timezone: visitor.geo.timezone,
      screen: { ...visitor.agent.screen },
      library: { ...LIBRARY },
    };
    const message: SegmentMessage = {
      type: step.kind,
      messageId: `${idPrefix}-${state.seq}`,
      anonymousId: visitor.anonymousId,
      ...(state.userId ? { userId: state.userId } : {}),
      timestamp: new Date(ms).toISOString(),
      context,
    };
    switch (step.kind) {
      case 'session_start':
        message.properties = { referrer };
        break;
      case 'session_end':
        message.properties = { durationMs: ms - sessionStartMs, pageViews };
        break;
      case 'page':
        message.name = step.name;
        message.properties = { ...page };
        break;
      case 'click':
      case 'link':
        message.properties = { element: { ...step.element, classes: [...step.element.classes] } };
        break;
      case 'track':
        message.event = step.event;
        message.properties = step.properties;
        break;
      case 'identify':
        if (!person) break;
        message.traits = {
          email: person.email,
          firstName: person.firstName,
          lastName: person.lastName,
          ...(person.company ? { company: person.company.name } : {}),
          createdAt: person.createdAt,
          plan: person.plan,
        };
        if (person.groupOnIdentify && person.company) context.groupId = person.company.groupId;
        break;
      case 'group':
        if (!person?.group) break;
        message.groupId = person.group.groupId;
        message.traits = {
          name: person.group.name,
          ...(person.group.industry ? { industry: person.group.industry } : {}),
          ...(person.group.employees ? { employees: person.group.employees } : {}),
          plan: person.plan,
        };
        break;
    }
    drafts.push({ ms, seq: state.seq, message });
    state.seq++;
  }
  return { drafts, endMs: ms };
}

function createVisitor(
  rng: Random,
  tenantIndex: number,
  userNumber: () => number,
  startMs: number,
): Visitor {
  const identifies = rng.chance(0.55);
  const company = identifies && rng.chance(0.6) ? rng.pick(COMPANIES) : null;
  const homeGeo = company ? COUNTRY_IPS.find((c) => c.country === company.country) : undefined;
  const geo = homeGeo && rng.chance(0.7) ? homeGeo : rng.weighted(COUNTRY_IPS);
  const projectIds = Array.from({ length: rng.int(1, 4) }, () => rng.int(100, 999));
  return {
    tenantIndex,
    anonymousId: uuidV4(rng),
    ip: rng.pick(geo.ips),
    geo,
    agent: rng.weighted(USER_AGENTS),
    host: TENANT_HOSTS[tenantIndex] ?? `https://app.tenant-${tenantIndex}.example.com`,
    projectIds,
    person: identifies ? createPerson(rng, userNumber(), company, startMs) : null,
  };
}

function batchBytes(message: SegmentMessage): number {
  return Buffer.byteLength(JSON.stringify(message)) + 1;
}

function chunk(tenant: string, drafts: Draft[]): { batch: TrafficBatch; firstMs: number }[] {
  const out: { batch: TrafficBatch; firstMs: number }[] = [];
  let current: SegmentMessage[] = [];
  let bytes = BATCH_ENVELOPE_BYTES;
  let firstMs = 0;
  for (const d of drafts) {
    const size = batchBytes(d.message);
    if (current.length >= MAX_BATCH_MESSAGES || (current.length > 0 && bytes + size > MAX_BATCH_BYTES)) {
      out.push({ batch: { tenant, messages: current }, firstMs });
      current = [];
      bytes = BATCH_ENVELOPE_BYTES;
    }
    if (current.length === 0) firstMs = d.ms;
    current.push(d.message);
    bytes += size;
  }
  if (current.length > 0) out.push({ batch: { tenant, messages: current }, firstMs });
  return out;
}

/** The batch of `tenant` from which on about half of its events remain to be sent. */
function chooseSwitchIndex(batches: TrafficBatch[], tenant: string | undefined): number {
  if (tenant === undefined) return batches.length;
  const total = batches.filter((b) => b.tenant === tenant).reduce((s, b) => s + b.messages.length, 0);
  let sent = 0;
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i];
    if (b?.tenant !== tenant) continue;
    if (sent > 0 && sent * 2 >= total) return i;
    sent += b.messages.length;
  }
  return batches.length;
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
        if (domain) setFor(inferred, tenant).add(domain);
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

export function generateTraffic(opts: TrafficOptions): GeneratedTraffic {
  const seed = opts.seed ?? 1;
  const { events, tenants, startMs } = opts;
  if (!Number.isInteger(events) || events < 1) throw new RangeError(`events must be a positive integer, got ${events}`);
  if (tenants.length < 2) throw new RangeError('generateTraffic needs two tenants: one stays clear, one switches anonymization on');
  if (new Set(tenants).size !== tenants.length) throw new RangeError('tenant ids must be distinct');
  const rng = createRandom(seed);
  const idPrefix = `demo-${seed}`;
  const drafts: Draft[][] = tenants.map(() => []);
  const state: SessionState = { userId: undefined, seq: 0 };
  let nextUser = 1000;
  const userNumber = (): number => ++nextUser;
  const tenantWeights = tenants.map((_, i) => ({ i, weight: i === 0 ? 1.2 : 1 }));
  let remaining = events;
  while (remaining > 0) {
    const tenantIndex = rng.weighted(tenantWeights).i;
    const visitor = createVisitor(rng, tenantIndex, userNumber, startMs);
    state.userId = undefined;
    const sessionCount = rng.weighted([
      { n: 1, weight: 40 },
      { n: 2, weight: 30 },
      { n: 3, weight: 20 },
      { n: 4, weight: 10 },
    ]).n;
    const identifySession = visitor.person ? (sessionCount > 1 && rng.chance(0.3) ? 1 : 0) : -1;
    // Sessions end ≤ ~45 min after they start, so starting 2 h before startMs keeps all in the past.
    const latestStart = startMs - 2 * HOUR_MS;
    let sessionStart = startMs - WINDOW_MS + Math.floor(rng.next() * (WINDOW_MS - 2 * HOUR_MS));
    for (let s = 0; s < sessionCount && remaining > 0 && sessionStart <= latestStart; s++) {
      const reidentify = s > identifySession && identifySession >= 0 && rng.chance(0.3);
      const landing = s === identifySession && rng.chance(0.35) ? 'pii' : rng.chance(0.2) ? 'utm' : 'plain';
      const steps = trimSession(planSession(rng, visitor, s === identifySession || reidentify, landing), remaining);
      const target = drafts[tenantIndex];
      if (!target) throw new Error('unreachable: tenant index out of range');
      const { drafts: made, endMs } = materializeSession(rng, visitor, steps, sessionStart, state, idPrefix);
      target.push(...made);
      remaining -= made.length;
      sessionStart = endMs + rng.int(1, 20) * HOUR_MS + rng.int(0, 59) * 60_000;
    }
  }
  const chunks = tenants.flatMap((tenant, i) => {
    const sortedDrafts = (drafts[i] ?? []).slice().sort((a, b) => a.ms - b.ms || a.seq - b.seq);
    return chunk(tenant, sortedDrafts).map((c) => ({ ...c, tenantIndex: i }));
  });
  // NOTE: interleave tenants by time so sending replays the days in order for both tenants.
  chunks.sort((a, b) => a.firstMs - b.firstMs || a.tenantIndex - b.tenantIndex);
  const batches = chunks.map((c) => c.batch);
  const switchIndex = chooseSwitchIndex(batches, tenants[1]);
  return { batches, expected: summarizeTraffic(batches, tenants, switchIndex), switchIndex };
}
