// Who visits: one visitor per device with an IP, user agent and tenant host, and for about
// half of them a person (company or free-mail email, maybe an explicit account) who identifies.
import {
  COMPANIES,
  COUNTRY_IPS,
  FIRST_NAMES,
  FREE_MAIL_DOMAINS,
  FREEMAIL_WORKSPACES,
  LAST_NAMES,
  USER_AGENTS,
  type CompanyFixture,
  type CountryIps,
  type UserAgentFixture,
} from './fixtures.js';
import { uuidV4, type Random } from './random.js';

const DAY_MS = 86_400_000;

export interface Person {
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

export interface Visitor {
  tenantIndex: number;
  anonymousId: string;
  ip: string;
  geo: CountryIps;
  agent: UserAgentFixture;
  host: string;
  projectIds: number[];
  person: Person | null;
}

const TENANT_HOSTS = ['https://app.projectly.io', 'https://app.ledgerline.com'];

function asciiSlug(s: string): string {
  return s
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z]/g, '');
}

type MailIdentity = Pick<Person, 'email' | 'company' | 'group' | 'groupOnIdentify'>;

function companyMail(rng: Random, company: CompanyFixture, first: string, last: string): MailIdentity {
  const host = rng.pick(company.mailHosts);
  const local = rng.chance(0.7) ? `${first}.${last}` : `${first.charAt(0)}${last}`;
  const group = rng.chance(0.6)
    ? { groupId: company.groupId, name: company.name, industry: company.industry, employees: company.employees }
    : null;
  return { email: `${local}@${host}`, company, group, groupOnIdentify: rng.chance(0.25) };
}

function freeMail(rng: Random, first: string, last: string): MailIdentity {
  const domain = rng.pick(FREE_MAIL_DOMAINS);
  const local = rng.chance(0.5) ? `${first}.${last}${rng.int(1, 99)}` : `${first}${last}${rng.int(70, 99)}`;
  const group = rng.chance(0.35) ? rng.pick(FREEMAIL_WORKSPACES) : null;
  return { email: `${local}@${domain}`, company: null, group, groupOnIdentify: false };
}

// NOTE: the order of rng draws here and in the helpers is part of what a seed means; changing it
// changes every seed's traffic.
function createPerson(rng: Random, userNumber: number, company: CompanyFixture | null, startMs: number): Person {
  const firstName = rng.pick(FIRST_NAMES);
  const lastName = rng.pick(LAST_NAMES);
  const first = asciiSlug(firstName);
  const last = asciiSlug(lastName);
  const createdAt = new Date(startMs - rng.int(5, 400) * DAY_MS).toISOString();
  const plan = rng.pick(['free', 'starter', 'pro', 'business']);
  const mail = company ? companyMail(rng, company, first, last) : freeMail(rng, first, last);
  return { userId: `user_${userNumber}`, firstName, lastName, ...mail, createdAt, plan };
}

export function createVisitor(
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
