// User-Agent → UserAgentInfo (browser, OS, device) with ua-parser-js 1.x (MIT; 2.x is AGPL, do
// not upgrade) behind an LRU: real traffic has few distinct UAs and parsing costs ~50 µs.
import { LRUCache } from 'lru-cache';
import UAParser from 'ua-parser-js';
import type { UserAgentInfo } from '../events/envelope.js';

export type UserAgentParser = (ua: string | null) => UserAgentInfo | null;

/**
 * Crawlers, monitors and HTTP libraries. NOTE: `(?<!cu)bot` keeps the Cubot phone brand out;
 * `headless` catches HeadlessChrome automation.
 */
export const BOT_PATTERN =
  /(?<!cu)bot\b|bot[/-]|crawl|spider|slurp|mediapartners|facebookexternalhit|embedly|headless|lighthouse|pingdom|uptimerobot|python-requests|python-urllib|aiohttp|httpx|curl\/|wget|go-http-client|java\/|libwww|httpclient|okhttp\/[0-9.]+$|axios|node-fetch|scrapy|phantomjs|selenium|puppeteer|playwright/i;

export function isBotUserAgent(ua: string): boolean {
  return BOT_PATTERN.test(ua);
}

const orNull = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

/** Parses one UA string (uncached). */
export function parseUserAgent(ua: string): UserAgentInfo {
  const r = new UAParser(ua).getResult();
  const bot = isBotUserAgent(ua);
  return Object.freeze({
    browser: orNull(r.browser.name),
    browser_version: orNull(r.browser.version),
    os: orNull(r.os.name),
    os_version: orNull(r.os.version),
    // NOTE: ua-parser leaves device.type empty for desktops; bots win over any parsed type.
    device_type: bot ? 'bot' : (orNull(r.device.type) ?? 'desktop'),
    device_vendor: orNull(r.device.vendor),
    device_model: orNull(r.device.model),
  });
}

/** Caching parser; results are frozen and shared between events with the same UA. */
export function createUserAgentParser(opts: { cacheSize?: number } = {}): UserAgentParser {
  const cache = new LRUCache<string, UserAgentInfo>({ max: opts.cacheSize ?? 5_000 });
  return function parseUa(ua) {
    if (ua === null) return null;
    if (ua.length === 0 || ua.trim().length === 0) return null;
    let info = cache.get(ua);
    if (info === undefined) {
      info = parseUserAgent(ua);
      cache.set(ua, info);
    }
    return info;
  };
}
