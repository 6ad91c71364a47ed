import { describe, expect, it } from 'vitest';
import { createUserAgentParser, isBotUserAgent, parseUserAgent } from './user-agent.js';

const CHROME_WIN = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
const SAFARI_IPAD =
  'Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1';
const SAFARI_MAC = 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const BINGBOT =
  'Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36';
const CUBOT = 'Mozilla/5.0 (Linux; Android 10; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/90.0 Mobile Safari/537.36';

describe('parseUserAgent', () => {
  it.each([
    ['Chrome on Windows', CHROME_WIN, { browser: 'Chrome', os: 'Windows', device_type: 'desktop' }],
    ['Safari on iPhone', SAFARI_IPHONE, { browser: 'Mobile Safari', os: 'iOS', device_type: 'mobile', device_vendor: 'Apple', device_model: 'iPhone' }],
    ['Safari on iPad', SAFARI_IPAD, { os: 'iOS', device_type: 'tablet' }],
    ['Safari on macOS', SAFARI_MAC, { browser: 'Safari', os: 'Mac OS', device_type: 'desktop' }],
    ['Googlebot', GOOGLEBOT, { device_type: 'bot' }],
    ['bingbot', BINGBOT, { device_type: 'bot' }],
    ['curl', 'curl/8.4.0', { device_type: 'bot' }],
    ['Cubot phone is not a bot', CUBOT, { os: 'Android', device_type: 'mobile' }],
  ])('%s', (_name, ua, expected) => {
    expect(parseUserAgent(ua)).toMatchObject(expected);
  });

  it.each([
    [GOOGLEBOT, true],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36', true],
    ['facebookexternalhit/1.1', true],
    ['python-requests/2.31.0', true],
    [CHROME_WIN, false],
    [CUBOT, false],
  ])('isBotUserAgent(%s) = %s', (ua, bot) => {
    expect(isBotUserAgent(ua)).toBe(bot);
  });

  it('keepBots: a bot parses as what its string says (botPolicy keep), cached apart from the labelled one', () => {
    const parse = createUserAgentParser();
    expect(parse(GOOGLEBOT)?.device_type).toBe('bot');
    expect(parse(GOOGLEBOT, { keepBots: true })?.device_type).toBe('desktop');
    expect(parse(GOOGLEBOT)?.device_type).toBe('bot');
    expect(parse(CHROME_WIN, { keepBots: true })).toBe(parse(CHROME_WIN));
  });
});

describe('createUserAgentParser', () => {
  it.each([null, '', '   '])('%j → null', (ua) => {
    expect(createUserAgentParser()(ua)).toBeNull();
  });

  it('caches by UA string', () => {
    const parse = createUserAgentParser({ cacheSize: 10 });
    const a = parse(CHROME_WIN);
    expect(parse(`${CHROME_WIN}`)).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
  });
});
