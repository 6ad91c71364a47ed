// Turns a planned session into timestamped Segment messages: the visitor's context on every
// message, page and referrer carried from step to step, traits on identify and group calls.
import { EXTERNAL_REFERRERS } from './fixtures.js';
import type { Random } from './random.js';
import type { SegmentContext, SegmentMessage, SegmentPage } from './segment-types.js';
import type { Step } from './session-plan.js';
import type { Visitor } from './visitors.js';

/** A message with the time and sequence number it is ordered by before batching. */
export interface Draft {
  ms: number;
  seq: number;
  message: SegmentMessage;
}

const LIBRARY = { name: 'tracklane-demo', version: '0.1.0' } as const;

/**
 * Threaded through a whole run: `userId` is the current visitor's once it identified (reset per
 * visitor), `seq` numbers every message of the run, so message ids are unique.
 */
export interface SessionState {
  userId: string | undefined;
  seq: number;
}

export function materializeSession(
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
