import { describe, expect, it } from 'vitest';
import { botControl } from './bot-policy.js';
import { collected, tenantWith } from '../../test/support/collection-events.js';

const HEADLESS = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36';
const GOOGLEBOT = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0';

describe('botControl', () => {
  const control = botControl();
  const events = () => [collected({ user_agent: HEADLESS }), collected({ user_agent: GOOGLEBOT }), collected({ user_agent: FIREFOX }), collected({ user_agent: null })];

  it('drop: drops a headless browser and a crawler, keeps a real browser and an event without agent', async () => {
    const [headless, crawler, firefox, none] = events();
    const v = await control.apply(tenantWith({ botPolicy: 'drop' }), [headless!, crawler!, firefox!, none!], 0);
    expect(v.kept).toEqual([firefox, none]);
    expect(v.dropped).toEqual([
      { eventId: headless!.event.event_id, reason: 'bot' },
      { eventId: crawler!.event.event_id, reason: 'bot' },
    ]);
  });

  it.each(['flag', 'keep'] as const)('%s: keeps every event (the enricher labels under flag)', async (botPolicy) => {
    const all = events();
    expect((await control.apply(tenantWith({ botPolicy }), all, 0)).kept).toEqual(all);
  });
});
