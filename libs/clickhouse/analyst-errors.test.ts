// Engine errors mapped to QueryRejectedError (analyst-errors.ts); infrastructure failures left alone.
import { describe, expect, it } from 'vitest';
import { classifyEngineError } from './analyst-errors.js';

describe('classifyEngineError', () => {
  const chdb = (code: number, type: string, text: string): Error => new Error(`Code: ${code}. DB::Exception: ${text}. (${type})`);
  it.each([
    { err: chdb(241, 'MEMORY_LIMIT_EXCEEDED', 'Query memory limit exceeded: would use 768.06 MiB'), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(158, 'TOO_MANY_ROWS', "Limit for rows (controlled by 'max_rows_to_read' setting) exceeded"), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(159, 'TIMEOUT_EXCEEDED', 'Timeout exceeded: elapsed 20 seconds'), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(396, 'TOO_MANY_ROWS_OR_BYTES', 'Limit for result exceeded, max rows: 10.00 thousand'), code: 'query_limit_exceeded', status: 422 },
    { err: chdb(62, 'SYNTAX_ERROR', 'Syntax error: failed at position 1'), code: 'query_invalid', status: 400 },
    { err: chdb(456, 'UNKNOWN_QUERY_PARAMETER', 'Substitution `x` is not set'), code: 'query_invalid', status: 400 },
    { err: chdb(164, 'READONLY', 'default: Cannot execute query in readonly mode'), code: 'query_not_allowed', status: 403 },
    { err: chdb(497, 'ACCESS_DENIED', 'analyst: Not enough privileges'), code: 'query_not_allowed', status: 403 },
    { err: chdb(47, 'UNKNOWN_IDENTIFIER', 'Unknown expression identifier `nope` in scope SELECT nope FROM events'), code: 'query_failed', status: 400 },
    { err: chdb(60, 'UNKNOWN_TABLE', 'Unknown table expression identifier'), code: 'query_failed', status: 400 },
  ])('$err.message → $code', ({ err, code, status }) => {
    const r = classifyEngineError(err);
    expect(r?.code).toBe(code);
    expect(r?.status).toBe(status);
    expect(r?.message).not.toMatch(/in scope/i);
  });

  it('reads a ClickHouseError of the HTTP client (code and type fields)', () => {
    const e = Object.assign(new Error('Limit for result exceeded'), { code: '396', type: 'TOO_MANY_ROWS_OR_BYTES' });
    expect(classifyEngineError(e)?.code).toBe('query_limit_exceeded');
  });

  it('SETTINGS refused at parse time is the statement; a setting refused later is ours (infrastructure)', () => {
    const e = chdb(164, 'READONLY', "Code: 164. DB::Exception: Cannot modify 'readonly' setting in readonly mode. (READONLY) (version 26.7.2.1)");
    expect(classifyEngineError(e, 'parse')?.message).toMatch(/SETTINGS clauses are not allowed/);
    expect(classifyEngineError(e, 'run')).toBeNull();
  });

  it.each([
    new Error('connect ECONNREFUSED 127.0.0.1:8123'),
    chdb(202, 'TOO_MANY_SIMULTANEOUS_QUERIES', 'Too many simultaneous queries'),
    chdb(210, 'NETWORK_ERROR', 'Connection reset by peer'),
    chdb(241, 'MEMORY_LIMIT_EXCEEDED', 'Memory limit (total) exceeded'),
    chdb(49, 'LOGICAL_ERROR', 'Bad cast'),
  ])('leaves infrastructure failures alone: %s', (err) => {
    expect(classifyEngineError(err)).toBeNull();
  });

  it('never echoes a long statement', () => {
    const e = chdb(47, 'UNKNOWN_IDENTIFIER', `Missing columns: ${'x'.repeat(10_000)}`);
    expect(classifyEngineError(e)?.message.length).toBeLessThan(500);
  });
});
