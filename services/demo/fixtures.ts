// Static catalogues the demo traffic generator draws from: public IPs per country (each one
// checked against the bundled DB-IP Lite mmdb in traffic.test.ts), user agents, app pages,
// clickable elements, companies and free-mail providers.

export interface CountryIps {
  /** ISO 3166-1 alpha-2, as DB-IP Lite reports it for every IP below */
  country: string;
  ips: readonly string[];
  locale: string;
  timezone: string;
  /** relative share of visitors */
  weight: number;
}

// NOTE: large, long-lived networks (Google, Comcast, BT, IONOS, Orange, SoftBank, NIC.br,
// Reliance Jio, Telstra …) so the country mapping is stable across DB-IP releases.
export const COUNTRY_IPS: readonly CountryIps[] = [
  { country: 'US', ips: ['8.8.8.8', '73.162.0.1', '17.253.144.10'], locale: 'en-US', timezone: 'America/Los_Angeles', weight: 30 },
  { country: 'GB', ips: ['81.2.69.160', '86.128.0.1', '212.58.244.20'], locale: 'en-GB', timezone: 'Europe/London', weight: 14 },
  { country: 'DE', ips: ['217.160.0.1', '85.214.132.117', '46.4.0.1'], locale: 'de-DE', timezone: 'Europe/Berlin', weight: 12 },
  { country: 'FR', ips: ['80.67.169.12', '90.84.0.1', '62.210.16.6'], locale: 'fr-FR', timezone: 'Europe/Paris', weight: 9 },
  { country: 'JP', ips: ['133.242.0.1', '126.0.0.1', '210.140.92.183'], locale: 'ja-JP', timezone: 'Asia/Tokyo', weight: 8 },
  { country: 'BR', ips: ['200.160.2.3', '177.71.128.1', '189.6.0.1'], locale: 'pt-BR', timezone: 'America/Sao_Paulo', weight: 8 },
  { country: 'IN', ips: ['49.44.0.1', '117.192.0.1', '106.51.0.1'], locale: 'en-IN', timezone: 'Asia/Kolkata', weight: 9 },
  { country: 'AU', ips: ['1.128.0.1', '139.130.4.5', '203.2.218.214'], locale: 'en-AU', timezone: 'Australia/Sydney', weight: 6 },
  { country: 'CA', ips: ['24.48.0.1', '104.16.0.1'], locale: 'en-CA', timezone: 'America/Toronto', weight: 4 },
];

export interface UserAgentFixture {
  ua: string;
  device: 'desktop' | 'mobile' | 'tablet';
  screen: { width: number; height: number };
  weight: number;
}

export const USER_AGENTS: readonly UserAgentFixture[] = [
  {
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
    device: 'desktop',
    screen: { width: 1920, height: 1080 },
    weight: 28,
  },
  {
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
    device: 'desktop',
    screen: { width: 1512, height: 982 },
    weight: 18,
  },
  {
    ua: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
    device: 'desktop',
    screen: { width: 1440, height: 900 },
    weight: 10,
  },
  {
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0',
    device: 'desktop',
    screen: { width: 1366, height: 768 },
    weight: 7,
  },
  {
    ua: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68',
    device: 'desktop',
    screen: { width: 1536, height: 864 },
    weight: 8,
  },
  {
    ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36',
    device: 'desktop',
    screen: { width: 2560, height: 1440 },
    weight: 4,
  },
  {
    ua: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    device: 'mobile',
    screen: { width: 393, height: 852 },
    weight: 12,
  },
  {
    ua: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36',
    device: 'mobile',
    screen: { width: 412, height: 915 },
    weight: 7,
  },
  {
    ua: 'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36',
    device: 'mobile',
    screen: { width: 360, height: 780 },
    weight: 4,
  },
  {
    ua: 'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
    device: 'tablet',
    screen: { width: 820, height: 1180 },
    weight: 2,
  },
];

/** `{id}` is replaced by a project / report number. */
export interface PageFixture {
  path: string;
  title: string;
  name: string;
  weight: number;
}

export const APP_PAGES: readonly PageFixture[] = [
  { path: '/dashboard', title: 'Dashboard', name: 'Dashboard', weight: 20 },
  { path: '/projects', title: 'Projects', name: 'Projects', weight: 10 },
  { path: '/projects/{id}', title: 'Project overview', name: 'Project', weight: 14 },
  { path: '/projects/{id}/tasks', title: 'Tasks', name: 'Project Tasks', weight: 8 },
  { path: '/projects/{id}/settings', title: 'Project settings', name: 'Project Settings', weight: 3 },
  { path: '/reports?range=30d', title: 'Reports', name: 'Reports', weight: 7 },
  { path: '/reports?range=7d&group=week', title: 'Reports', name: 'Reports', weight: 4 },
  { path: '/reports/{id}', title: 'Report', name: 'Report', weight: 4 },
  { path: '/settings/billing', title: 'Billing', name: 'Billing Settings', weight: 3 },
  { path: '/settings/team', title: 'Team', name: 'Team Settings', weight: 4 },
  { path: '/settings/profile', title: 'Profile', name: 'Profile Settings', weight: 3 },
  { path: '/integrations', title: 'Integrations', name: 'Integrations', weight: 3 },
  { path: '/docs/getting-started', title: 'Getting started', name: 'Docs', weight: 2 },
  { path: '/search?q=invoice', title: 'Search', name: 'Search', weight: 2 },
];

/** Landing pages whose query string carries an email the collector must scrub. */
export const PII_LANDING_PATHS: readonly { path: string; title: string; name: string }[] = [
  { path: '/login', title: 'Sign in', name: 'Login' },
  { path: '/invite/accept', title: 'Accept invitation', name: 'Accept Invite' },
  { path: '/signup', title: 'Create your account', name: 'Signup' },
];

export const UTM_SOURCES: readonly string[] = ['newsletter', 'product-update', 'onboarding', 'linkedin', 'partner'];

export const EXTERNAL_REFERRERS: readonly string[] = [
  'https://www.google.com/',
  'https://www.bing.com/',
  'https://news.ycombinator.com/',
  'https://www.linkedin.com/',
  'https://github.com/',
  '',
  '',
];

/** What the tag records of an element: tag, id, classes, short label, href. Nothing else. */
export type ClickElement = {
  tag: 'BUTTON' | 'A';
  id: string | null;
  classes: string[];
  label: string;
  href: string | null;
};

export const BUTTONS: readonly Omit<ClickElement, 'href' | 'tag'>[] = [
  { id: 'new-project', classes: ['btn', 'btn-primary'], label: 'New project' },
  { id: 'save-changes', classes: ['btn', 'btn-primary'], label: 'Save changes' },
  { id: 'export-report', classes: ['btn', 'btn-secondary'], label: 'Export' },
  { id: 'invite-member', classes: ['btn', 'btn-secondary'], label: 'Invite' },
  { id: null, classes: ['btn', 'btn-ghost', 'icon-only'], label: 'Close' },
  { id: 'filter-toggle', classes: ['btn', 'btn-ghost'], label: 'Filters' },
  { id: 'upgrade-plan', classes: ['btn', 'btn-accent'], label: 'Upgrade' },
  { id: null, classes: ['tab'], label: 'Activity' },
  { id: 'date-range', classes: ['btn', 'dropdown-toggle'], label: 'Last 30 days' },
];

export const LINKS: readonly Omit<ClickElement, 'tag'>[] = [
  { id: 'nav-dashboard', classes: ['nav-link'], label: 'Dashboard', href: '/dashboard' },
  { id: 'nav-projects', classes: ['nav-link'], label: 'Projects', href: '/projects' },
  { id: 'nav-reports', classes: ['nav-link'], label: 'Reports', href: '/reports?range=30d' },
  { id: 'nav-settings', classes: ['nav-link'], label: 'Settings', href: '/settings/profile' },
  { id: null, classes: ['breadcrumb-item'], label: 'All projects', href: '/projects' },
  { id: null, classes: ['footer-link'], label: 'Help center', href: 'https://help.example.com/articles/getting-started' },
  { id: 'docs-link', classes: ['link', 'external'], label: 'API docs', href: 'https://docs.example.com/api' },
  { id: null, classes: ['card-link'], label: 'Open report', href: '/reports/{id}' },
];

export interface TrackFixture {
  event: string;
  weight: number;
}

export const TRACK_EVENTS: readonly TrackFixture[] = [
  { event: 'Project Created', weight: 6 },
  { event: 'Task Completed', weight: 10 },
  { event: 'Report Exported', weight: 5 },
  { event: 'Invite Sent', weight: 3 },
  { event: 'Integration Connected', weight: 2 },
  { event: 'Plan Upgraded', weight: 1 },
  { event: 'Filter Applied', weight: 6 },
];

export interface CompanyFixture {
  /** explicit account id used in group calls */
  groupId: string;
  name: string;
  /** registrable domain (eTLD+1) the enricher should infer */
  domain: string;
  /** hosts employees' addresses use: the domain itself and sub-domains */
  mailHosts: readonly string[];
  country: string;
  industry: string;
  employees: number;
}

// NOTE: fictional companies; several sit under multi-label public suffixes (co.uk, co.jp,
// com.au, com.br, co.in) and mail from sub-domains, so the inferred account must be the
// registrable domain, not the mail host.
export const COMPANIES: readonly CompanyFixture[] = [
  { groupId: 'acct_acme', name: 'Acme Ltd', domain: 'acme.co.uk', mailHosts: ['acme.co.uk', 'eng.acme.co.uk'], country: 'GB', industry: 'Manufacturing', employees: 420 },
  { groupId: 'acct_globex', name: 'Globex Corporation', domain: 'globex-corp.com', mailHosts: ['globex-corp.com', 'mail.globex-corp.com'], country: 'US', industry: 'Energy', employees: 5200 },
  { groupId: 'acct_initech', name: 'Initech', domain: 'initech-software.io', mailHosts: ['initech-software.io'], country: 'US', industry: 'Software', employees: 180 },
  { groupId: 'acct_umbrella', name: 'Umbrella Analytik GmbH', domain: 'umbrella-analytik.de', mailHosts: ['umbrella-analytik.de', 'berlin.umbrella-analytik.de'], country: 'DE', industry: 'Healthcare', employees: 950 },
  { groupId: 'acct_soylent', name: 'Soylent SAS', domain: 'soylent-foods.fr', mailHosts: ['soylent-foods.fr'], country: 'FR', industry: 'Food', employees: 310 },
  { groupId: 'acct_tyrell', name: 'Tyrell KK', domain: 'tyrell-robotics.co.jp', mailHosts: ['tyrell-robotics.co.jp', 'rd.tyrell-robotics.co.jp'], country: 'JP', industry: 'Robotics', employees: 1300 },
  { groupId: 'acct_cyberdyne', name: 'Cyberdyne Systems Pty', domain: 'cyberdyne-systems.com.au', mailHosts: ['cyberdyne-systems.com.au', 'syd.cyberdyne-systems.com.au'], country: 'AU', industry: 'Defense', employees: 640 },
  { groupId: 'acct_wayne', name: 'Wayne Logística', domain: 'wayne-logistica.com.br', mailHosts: ['wayne-logistica.com.br'], country: 'BR', industry: 'Logistics', employees: 2100 },
  { groupId: 'acct_stark', name: 'Stark Digital', domain: 'stark-digital.co.in', mailHosts: ['stark-digital.co.in', 'blr.stark-digital.co.in'], country: 'IN', industry: 'IT Services', employees: 3800 },
  { groupId: 'acct_hooli', name: 'Hooli', domain: 'hooli-cloud.com', mailHosts: ['hooli-cloud.com'], country: 'US', industry: 'Internet', employees: 12000 },
];

/** Workspaces of people who sign up with free-mail: explicit accounts with no email domain. */
export const FREEMAIL_WORKSPACES: readonly { groupId: string; name: string }[] = [
  { groupId: 'acct_pixelworks', name: 'Pixelworks Studio' },
  { groupId: 'acct_nomad_devs', name: 'Nomad Devs Collective' },
  { groupId: 'acct_lighthouse', name: 'Lighthouse Freelance' },
];

export const FREE_MAIL_DOMAINS: readonly string[] = [
  'gmail.com',
  'gmail.com',
  'gmail.com',
  'outlook.com',
  'yahoo.com',
  'hotmail.co.uk',
  'icloud.com',
  'gmx.de',
  'yahoo.co.jp',
  'proton.me',
];

export const FIRST_NAMES: readonly string[] = [
  'Alice', 'Bruno', 'Chloé', 'Daniel', 'Emma', 'Farah', 'Giulia', 'Hiroshi', 'Isabela', 'James',
  'Kavya', 'Lukas', 'Mia', 'Noah', 'Olivia', 'Priya', 'Quentin', 'Rafael', 'Sophie', 'Tomás',
  'Uma', 'Victor', 'Wei', 'Yuki', 'Zoe', 'Arjun', 'Léa', 'Mateus', 'Hannah', 'Oliver',
];

export const LAST_NAMES: readonly string[] = [
  'Smith', 'Müller', 'Dubois', 'Tanaka', 'Silva', 'Patel', 'Johnson', 'Brown', 'Schmidt', 'Martin',
  'Sato', 'Santos', 'Sharma', 'Williams', 'Wilson', 'Fischer', 'Bernard', 'Suzuki', 'Oliveira', 'Kumar',
  'Taylor', 'Nguyen', 'Rossi', "O'Brien", 'García',
];
