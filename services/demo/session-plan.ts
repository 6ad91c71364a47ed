// Plans one visitor session as a list of steps — landing page, navigation, clicks, custom
// events, identify and group calls — before any message or timestamp exists.
import {
  APP_PAGES,
  BUTTONS,
  LINKS,
  PII_LANDING_PATHS,
  TRACK_EVENTS,
  UTM_SOURCES,
  type ClickElement,
  type PageFixture,
} from './fixtures.js';
import type { Random } from './random.js';
import type { JsonObject } from './segment-types.js';
import type { Visitor } from './visitors.js';

export type Step =
  | { kind: 'session_start' }
  | { kind: 'session_end' }
  | { kind: 'page'; path: string; title: string; name: string }
  | { kind: 'click'; element: ClickElement }
  | { kind: 'link'; element: ClickElement }
  | { kind: 'track'; event: string; properties: JsonObject }
  | { kind: 'identify' }
  | { kind: 'group' };

/** How a session's first page is reached: an email link carrying PII, an ad with UTM tags, or plain. */
export type Landing = 'pii' | 'utm' | 'plain';

function resolvePath(path: string, visitor: Visitor, rng: Random): string {
  return path.replace('{id}', String(rng.pick(visitor.projectIds)));
}

function pageFromPath(path: string): PageFixture | undefined {
  const bare = path.replace(/\/\d+(?=\/|$|\?)/g, '/{id}');
  return APP_PAGES.find((p) => p.path === bare);
}

function trackStep(rng: Random, visitor: Visitor): Step {
  const { event } = rng.weighted(TRACK_EVENTS);
  const projectId = `prj_${rng.pick(visitor.projectIds)}`;
  const properties = ((): JsonObject => {
    switch (event) {
      case 'Project Created':
        return { projectId: `prj_${rng.int(100, 999)}`, template: rng.pick(['blank', 'kanban', 'roadmap', 'sprint']) };
      case 'Task Completed':
        return { projectId, taskId: `task_${rng.int(1000, 99999)}`, priority: rng.pick(['low', 'medium', 'high']) };
      case 'Report Exported':
        return { reportId: `rep_${rng.int(10, 400)}`, format: rng.pick(['csv', 'pdf', 'xlsx']), range: rng.pick(['7d', '30d', '90d']) };
      case 'Invite Sent':
        return { role: rng.pick(['viewer', 'editor', 'admin']), seatsUsed: rng.int(2, 40) };
      case 'Integration Connected':
        return { provider: rng.pick(['slack', 'github', 'jira', 'google-drive']) };
      case 'Plan Upgraded':
        return { fromPlan: 'starter', toPlan: rng.pick(['pro', 'business']), seats: rng.int(3, 50), billingCycle: rng.pick(['monthly', 'annual']) };
      default:
        return { filter: rng.pick(['status', 'assignee', 'due', 'label']), projectId };
    }
  })();
  return { kind: 'track', event, properties };
}

/** Plans one session as steps; identification decides whether identify/group calls appear. */
export function planSession(rng: Random, visitor: Visitor, identifyHere: boolean, landing: Landing): Step[] {
  const steps: Step[] = [{ kind: 'session_start' }];
  const person = visitor.person;
  const pageCount = rng.int(2, 9);
  let nextPath: string | null = null;
  for (let i = 0; i < pageCount; i++) {
    if (i === 0 && landing === 'pii' && person) {
      const pii = rng.pick(PII_LANDING_PATHS);
      // TRICKY: half encoded, half raw: the collector's scrub must catch both spellings.
      const email = rng.chance(0.5) ? encodeURIComponent(person.email) : person.email;
      const utm = `utm_source=${rng.pick(UTM_SOURCES)}&utm_medium=email&utm_campaign=${rng.pick(['q3-launch', 'weekly-digest', 'reactivation'])}`;
      steps.push({ kind: 'page', path: `${pii.path}?email=${email}&${utm}`, title: pii.title, name: pii.name });
    } else {
      const fixture = nextPath ? pageFromPath(nextPath) : undefined;
      const page = fixture ?? rng.weighted(APP_PAGES);
      let path = nextPath && fixture ? nextPath : resolvePath(page.path, visitor, rng);
      if (i === 0 && landing === 'utm') {
        path += `${path.includes('?') ? '&' : '?'}utm_source=${rng.pick(UTM_SOURCES)}&utm_medium=cpc`;
      }
      steps.push({ kind: 'page', path, title: page.title, name: page.name });
    }
    nextPath = null;
    if (i === 0 && identifyHere && person) {
      steps.push({ kind: 'identify' });
      if (person.group) steps.push({ kind: 'group' });
    }
    const interactions = rng.weighted([
      { n: 0, weight: 25 },
      { n: 1, weight: 35 },
      { n: 2, weight: 25 },
      { n: 3, weight: 15 },
    ]).n;
    for (let k = 0; k < interactions; k++) {
      const r = rng.next();
      if (r < 0.45) {
        const button = rng.pick(BUTTONS);
        steps.push({
          kind: 'click',
          element: { tag: 'BUTTON', id: button.id, classes: [...button.classes], label: button.label, href: null },
        });
      } else if (r < 0.7) {
        const link = rng.pick(LINKS);
        const href = link.href ? resolvePath(link.href, visitor, rng) : null;
        steps.push({ kind: 'link', element: { tag: 'A', id: link.id, classes: [...link.classes], label: link.label, href } });
        // NOTE: an internal link navigates, so it ends this page and names the next one.
        if (href?.startsWith('/') && i < pageCount - 1) {
          nextPath = href;
          break;
        }
      } else {
        steps.push(trackStep(rng, visitor));
      }
    }
  }
  steps.push({ kind: 'session_end' });
  return steps;
}

/** Keeps the session's shape when the event budget runs out: start, some steps, end. */
export function trimSession(steps: Step[], budget: number): Step[] {
  if (steps.length <= budget) return steps;
  if (budget <= 1) return steps.slice(0, budget);
  return [...steps.slice(0, budget - 1), { kind: 'session_end' }];
}
