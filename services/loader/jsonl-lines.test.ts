import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../libs/events/envelope.js';
import { parseJsonLine, readJsonlLines } from './jsonl-lines.js';
import type { LoadLine, LoadSubject } from './load-row.js';

describe('parseJsonLine', () => {
  it.each<[string, LoadSubject, string, LoadLine | undefined]>([
    ['a row', 'user', '{"id":"u1","email":"a@b.c","phone":null}', { kind: 'row', line: 4, id: 'u1', set: { email: 'a@b.c', phone: null } }],
    ['userId as the id', 'user', '{"userId":" u1 ","email":"a"}', { kind: 'row', line: 4, id: 'u1', set: { email: 'a' } }],
    ['accountId as the id', 'account', '{"accountId":"a1","name":"Acme"}', { kind: 'row', line: 4, id: 'a1', set: { name: 'Acme' } }],
    ['accountId in a users file is an attribute', 'user', '{"id":"u1","accountId":"a1"}', { kind: 'row', line: 4, id: 'u1', set: { accountId: 'a1' } }],
    ['userId in an accounts file is an attribute', 'account', '{"userId":"u1"}', { kind: 'bad', line: 4, reason: 'no id: give it as "id" or "accountId"' }],
    ['only an id', 'user', '{"id":"u1"}', { kind: 'noop', line: 4 }],
    ['a blank line', 'user', '   ', undefined],
    ['invalid JSON', 'user', '{"id":"u1",', { kind: 'bad', line: 4, reason: 'invalid JSON' }],
    ['an array', 'user', '["u1"]', { kind: 'bad', line: 4, reason: 'expected a JSON object, got an array' }],
    ['a string', 'user', '"u1"', { kind: 'bad', line: 4, reason: 'expected a JSON object, got a string' }],
    ['null', 'user', 'null', { kind: 'bad', line: 4, reason: 'expected a JSON object, got null' }],
    ['no id', 'user', '{"email":"a"}', { kind: 'bad', line: 4, reason: 'no id: give it as "id" or "userId"' }],
    ['two ids', 'user', '{"id":"u1","userId":"u1"}', { kind: 'bad', line: 4, reason: 'both "id" and "userId" given: use one id key' }],
    ['a numeric id', 'user', '{"id":42,"email":"a"}', { kind: 'bad', line: 4, reason: '"id" must be a string, got a number' }],
    ['a null id', 'user', '{"id":null,"email":"a"}', { kind: 'bad', line: 4, reason: '"id" must be a string, got null' }],
    ['a number', 'user', '{"id":"u1","age":42}', { kind: 'bad', line: 4, reason: 'key "age": value must be a string or null, got a number' }],
    ['a boolean', 'user', '{"id":"u1","vip":true}', { kind: 'bad', line: 4, reason: 'key "vip": value must be a string or null, got a boolean' }],
    ['an object', 'user', '{"id":"u1","plan":{"tier":"pro"}}', { kind: 'bad', line: 4, reason: 'key "plan": value must be a string or null, got an object' }],
    ['an empty id', 'user', '{"id":" ","email":"a"}', { kind: 'bad', line: 4, reason: 'id is empty' }],
    ['a long value', 'user', `{"id":"u1","email":"${'x'.repeat(LIMITS.mapValueChars + 1)}"}`, { kind: 'bad', line: 4, reason: `key "email": value longer than ${LIMITS.mapValueChars} characters` }],
  ])('%s', (_what, dataSubject, text, expected) => {
    expect(parseJsonLine(4, text, dataSubject)).toEqual(expected);
  });

  it('never quotes the text of a line in a reason', () => {
    for (const text of ['{"id":"u1","email":"secret@x.io"', '{"id":"secret","n":1}', 'secret', '{"id":"u1","email":secret}']) {
      expect(JSON.stringify(parseJsonLine(1, text, 'user'))).not.toContain('secret');
    }
  });
});

describe('readJsonlLines', () => {
  it('numbers every line, blank ones and CRLF included, and drops a BOM', async () => {
    const text = '\uFEFF{"id":"u1","a":"x"}\r\n\r\n{"id":"u2","a":"y"}\n{bad\n   \n{"id":"u3","a":null}';
    const out: LoadLine[] = [];
    for await (const l of readJsonlLines(Readable.from([Buffer.from(text)]), 'user')) out.push(l);
    expect(out.map((l) => [l.line, l.kind])).toEqual([
      [1, 'row'],
      [3, 'row'],
      [4, 'bad'],
      [6, 'row'],
    ]);
  });
});
