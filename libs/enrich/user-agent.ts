// User-Agent → UserAgentInfo (browser, OS, device) with ua-parser-js 1.x (MIT; 2.x is AGPL, do
// not upgrade) behind an LRU: real traffic has few distinct UAs and parsing costs ~50 µs.
import { LRUCache } from 'lru-cache';
import { isbot } from 'isbot';
import UAParser from 'ua-parser-js';
import type { UserAgentInfo } from '../events/envelope.js';

/** `keepBots`: a bot's device type is what its string parses as, not `bot` (botPolicy `keep`). */
export type UserAgentParser = (ua: string | null, opts?: { keepBots?: boolean }) => UserAgentInfo | null;

/**
 * Crawlers, monitors, headless browsers and HTTP libraries, by the maintained `isbot` list
 * (Unlicense). NOTE: its pattern runs in linear time on any input (no nested quantifiers).
 */
export function isBotUserAgent(ua: string): boolean {
  return isbot(ua);
}

const orNull = (v: string | undefined): string | null => (v === undefined || v === '' ? null : v);

/** Parses one UA string (uncached). */
export function parseUserAgent(ua: string, { keepBots = false }: { keepBots?: boolean } = {}): UserAgentInfo {
  const r = new UAParser(ua).getResult();
  const bot = !keepBots && isBotUserAgent(ua);
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
  // NOTE: bots kept unlabelled are rare (one tenant's choice): their own small cache
  const kept = new LRUCache<string, UserAgentInfo>({ max: 500 });
  return function parseUa(ua, { keepBots = false } = {}) {
    if (ua === null) return null;
    if (ua.length === 0 || ua.trim().length === 0) return null;
    const info = cache.get(ua) ?? cache.set(ua, parseUserAgent(ua)).get(ua)!;
    if (!keepBots || info.device_type !== 'bot') return info;
    return kept.get(ua) ?? kept.set(ua, parseUserAgent(ua, { keepBots: true })).get(ua)!;
  };
}
