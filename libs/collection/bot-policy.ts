// The tenant's bot policy (issue 16 item 5), flag `botPolicy`: `drop` discards events whose end
// user's agent is a bot's (`bot`, counted) here at the collector; `flag` (the default) and `keep`
// store them, the enricher labelling them `device_type = 'bot'` under `flag` only. Detection is
// the maintained `isbot` list (libs/enrich/user-agent.ts), on the end user's user agent: for a
// server-side SDK that is `context.userAgent` or nothing — normalize never gives its events the
// request's agent, the SDK's own (libs/events/libraries.ts).
import { isBotUserAgent } from '../enrich/user-agent.js';
import { perEventControl, type CollectionControl } from './controls.js';
import { LRUCache } from 'lru-cache';

export function botControl(): CollectionControl {
  // NOTE: few distinct agents in real traffic; the verdict of each is cached
  const verdicts = new LRUCache<string, boolean>({ max: 5_000 });
  const isBot = (ua: string): boolean => verdicts.get(ua) ?? verdicts.set(ua, isBotUserAgent(ua)).get(ua)!;
  return perEventControl('bots', (tenant, e) => {
    if (tenant.flags.botPolicy !== 'drop') return e;
    const ua = e.event.user_agent;
    return ua !== null && isBot(ua) ? { drop: 'bot' } : e;
  });
}
