import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { createStopStack, runStopSteps } from './stop-stack.js';

const capturingLogger = (lines: string[]) => createLogger({ level: 'debug', destination: { write: (line: string) => void lines.push(line) } });

describe('stop steps', () => {
  it('run in order; a failing one is logged by name (never its message) and the rest still run', async () => {
    const lines: string[] = [];
    const ran: string[] = [];
    const clean = await runStopSteps(
      [
        { name: 'intake', run: () => void ran.push('intake') },
        {
          name: 'clickhouse',
          run: async () => {
            ran.push('clickhouse');
            throw new Error('insert of alice@example.com failed');
          },
        },
        { name: 'redis', run: () => void ran.push('redis') },
      ],
      capturingLogger(lines),
    );
    expect(clean).toBe(false);
    expect(ran).toEqual(['intake', 'clickhouse', 'redis']);
    expect(lines.join('\n')).toMatch(/"step":"clickhouse"/);
    expect(lines.join('\n')).not.toContain('alice@example.com');
  });

  it('a stack closes newest first, once, however often it is asked', async () => {
    const lines: string[] = [];
    const closed: string[] = [];
    const stack = createStopStack();
    for (const name of ['tenants', 'clickhouse', 'http']) stack.push(name, () => void closed.push(name));
    expect(stack.steps().map((s) => s.name)).toEqual(['http', 'clickhouse', 'tenants']);
    const [a, b] = await Promise.all([stack.close(capturingLogger(lines)), stack.close(capturingLogger(lines))]);
    expect([a, b]).toEqual([true, true]);
    expect(closed).toEqual(['http', 'clickhouse', 'tenants']);
    expect(() => stack.push('late', () => undefined)).toThrow(/already closed/);
  });
});
