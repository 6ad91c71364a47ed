import { describe, expect, it } from 'vitest';
import { applyControls, perEventControl } from './controls.js';
import { collected, tenantWith } from '../../test/support/collection-events.js';

describe('applyControls', () => {
  it('runs controls in order: a dropped event reaches no later control, the first to drop names the reason', async () => {
    const seen: string[] = [];
    const first = perEventControl('first', (_t, e) => (e.event.name === 'A' ? { drop: 'first' } : e));
    const second = perEventControl('second', (_t, e) => {
      seen.push(e.event.name ?? '');
      return e.event.name === 'C' ? { retry: 'later' } : { drop: 'second' };
    });
    const [a, b, c] = [collected({ name: 'A' }), collected({ name: 'B' }), collected({ name: 'C' })];
    const v = await applyControls([first, second], tenantWith(), [a!, b!, c!], 0);
    expect(seen).toEqual(['B', 'C']);
    expect(v).toEqual({
      kept: [],
      dropped: [{ eventId: a!.event.event_id, reason: 'first' }, { eventId: b!.event.event_id, reason: 'second' }],
      retry: [{ eventId: c!.event.event_id, reason: 'later' }],
    });
  });
});
