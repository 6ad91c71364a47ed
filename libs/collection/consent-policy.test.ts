import { describe, expect, it } from 'vitest';
import { consentControl, consentVerdict } from './consent-policy.js';
import { collected, tenantWith } from '../../test/support/collection-events.js';

describe('consentVerdict', () => {
  it.each([
    ['no policy, no consent', [], 'keep', null, null],
    ['no policy, consent denied', [], 'drop', { analytics: false }, null],
    ['required and granted', ['analytics'], 'keep', { analytics: true, ads: false }, null],
    ['required and denied', ['analytics'], 'keep', { analytics: false }, 'consent_denied'],
    ['required and not mentioned', ['analytics'], 'keep', { ads: true }, 'consent_denied'],
    ['two required, one granted', ['analytics', 'functional'], 'keep', { analytics: true }, 'consent_denied'],
    ['a category named like a prototype property', ['constructor'], 'keep', {}, 'consent_denied'],
    ['required, no consent information, keep', ['analytics'], 'keep', null, null],
    ['required, no consent information, drop', ['analytics'], 'drop', null, 'consent_missing'],
  ] as const)('%s', (_name, consentRequired, consentMissing, consent, verdict) => {
    expect(consentVerdict({ consentRequired: [...consentRequired], consentMissing }, consent)).toBe(verdict);
  });
});

describe('consentControl', () => {
  it('keeps what passes and drops the rest with its reason', async () => {
    const tenant = tenantWith({ consentRequired: ['analytics'], consentMissing: 'drop' });
    const [yes, no, none] = [collected({}, { analytics: true }), collected({}, { analytics: false }), collected()];
    const v = await consentControl().apply(tenant, [yes, no, none], 0);
    expect(v.kept).toEqual([yes]);
    expect(v.dropped).toEqual([
      { eventId: no.event.event_id, reason: 'consent_denied' },
      { eventId: none.event.event_id, reason: 'consent_missing' },
    ]);
  });
});
