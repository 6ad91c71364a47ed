import { describe, expect, it } from 'vitest';
import { contentionBackoffMs } from './redis-tenant-mutations.js';

describe('contention backoff', () => {
  it.each([
    { attempt: 0, random: 0.999, ms: 4 },
    { attempt: 1, random: 0.999, ms: 9 },
    { attempt: 9, random: 0.999, ms: 49 },
    { attempt: 40, random: 0.999, ms: 49 },
    { attempt: 40, random: 0, ms: 0 },
    { attempt: 3, random: 0.5, ms: 10 },
  ])('attempt $attempt, draw $random → $ms ms', ({ attempt, random, ms }) => {
    expect(contentionBackoffMs(attempt, () => random)).toBe(ms);
  });

  it('stays below 50 ms however many attempts', () => {
    for (let attempt = 0; attempt < 100; attempt++) expect(contentionBackoffMs(attempt)).toBeLessThan(50);
  });
});
