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

function createPerson(rng: Random, userNumber: number, companyFirst: CompanyFixture | null, startMs: number): Person {
  const firstName = rng.pick(FIRST_NAMES);
  const lastName = rng.pick(LAST_NAMES);
  const first = asciiSlug(firstName);
  const last = asciiSlug(lastName);
  const createdAt = new Date(startMs - rng.int(5, 400) * DAY_MS).toISOString();
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
