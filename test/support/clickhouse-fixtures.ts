// CleanEvent builders for sink and ClickHouse tests and the sink benchmark.
import type { CleanEvent } from '../../libs/events/envelope.js';

const T0 = Date.UTC(2026, 5, 15, 12, 0, 0);

/** A complete track event; override anything. */
export function cleanEvent(overrides: Partial<CleanEvent> = {}): CleanEvent {
  const received_at = overrides.received_at ?? T0;
  return {
    event_id: 'evt-1',
    tenant_id: 'tenant-a',
    type: 'track',
    name: 'Button Clicked',
    user_id: null,
    anonymous_id: 'anon-1',
    previous_id: null,
    session_id: 'sess-1',
    account_id: null,
    occurred_at: received_at - 250,
    sent_at: received_at - 50,
    received_at,
    timestamp_clamped: false,
    ip: '81.2.69.0',
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0',
    context: {
      url: 'https://app.example.com/pricing?plan=pro',
      path: '/pricing',
      referrer: 'https://www.google.com/',
      title: 'Pricing',
      search: '?plan=pro',
      locale: 'en-GB',
      timezone: 'Europe/London',
      screen_width: 1920,
      screen_height: 1080,
      library_name: 'tracklane-tag',
      library_version: '1.0.0',
    },
    element: null,
    properties: { plan: '"pro"', seats: '5' },
    traits: {},
    account_traits: {},
    geo: { country: 'GB', region: 'England', city: 'London', lat: 51.5, lon: -0.12, timezone: 'Europe/London' },
    ip_org: { asn: 20712, org: 'Andrews & Arnold Ltd' },
    ua: {
      browser: 'Firefox',
      browser_version: '128.0',
      os: 'Linux',
      os_version: null,
      device_type: 'desktop',
      device_vendor: null,
      device_model: null,
    },
    inferred_account: null,
    identity_anonymized: false,
    key_version: 0,
    ...overrides,
  };
}

export function identifyEvent(overrides: Partial<CleanEvent> & { user_id: string }): CleanEvent {
  return cleanEvent({ type: 'identify', name: null, properties: {}, ...overrides });
}

/**
 * A deterministic realistic mix for volume tests and the benchmark: ~60 % page/track/click,
 * ~10 % identify with reserved traits and an email-domain account, the rest sessions etc.
 */
export function generateEvents(n: number, opts: { tenants?: number; users?: number; seed?: number; startMs?: number } = {}): CleanEvent[] {
  const tenants = opts.tenants ?? 4;
  const users = opts.users ?? 2000;
  const start = opts.startMs ?? T0;
  let s = opts.seed ?? 42;
  const rand = (): number => {
    // mulberry32
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const paths = ['/', '/pricing', '/docs', '/docs/install', '/blog', '/signup', '/login', '/app', '/app/settings', '/about'];
  const countries = ['GB', 'US', 'DE', 'FR', 'NL', 'SE', null];
  const out: CleanEvent[] = [];
  for (let i = 0; i < n; i++) {
    const u = Math.floor(rand() * users);
    const tenant = `tenant-${u % tenants}`;
    const received_at = start + i * 7;
    const r = rand();
    const path = paths[Math.floor(rand() * paths.length)] ?? '/';
    const country = countries[Math.floor(rand() * countries.length)] ?? null;
    const base: Partial<CleanEvent> = {
      event_id: `node-next-${received_at}-${i.toString(16).padStart(8, '0')}`,
      tenant_id: tenant,
      user_id: u % 3 === 0 ? null : `user-${u}`,
      anonymous_id: `anon-${u}`,
      session_id: `sess-${u}-${Math.floor(i / 5000)}`,
      received_at,
      occurred_at: received_at - 200 - Math.floor(rand() * 1000),
      sent_at: received_at - 40,
      context: {
        url: `https://app.example.com${path}`,
        path,
        referrer: null,
        title: path,
        search: null,
        locale: 'en-GB',
        timezone: null,
        screen_width: 1440,
        screen_height: 900,
        library_name: 'tracklane-tag',
        library_version: '1.0.0',
      },
      geo: country === null ? null : { country, region: null, city: 'City', lat: 1, lon: 2, timezone: null },
    };
    if (r < 0.1 && u % 3 !== 0) {
      const domain = `company${u % 50}.com`;
      out.push(
        identifyEvent({
          ...base,
          user_id: `user-${u}`,
          traits: { email: `"u${u}@${domain}"`, firstName: `"First${u}"`, lastName: `"Last${u}"`, plan: '"pro"' },
          inferred_account: { account_id: domain, domain, source: 'email_domain', confidence: 0.8 },
        }),
      );
    } else if (r < 0.4) {
      out.push(cleanEvent({ ...base, type: 'page', name: path }));
    } else if (r < 0.6) {
      out.push(
        cleanEvent({
          ...base,
          type: 'click',
          name: null,
          properties: {},
          element: { tag: 'button', id: 'cta', classes: ['btn', 'btn-primary'], label: 'Start trial', href: null },
        }),
      );
    } else {
      out.push(cleanEvent({ ...base, type: 'track', name: 'Feature Used', properties: { feature: `"f${i % 20}"`, n: String(i % 7) } }));
    }
  }
  return out;
}
