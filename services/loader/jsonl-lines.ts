// JSONL Data Loader files: one JSON object a line, `{"id": "...", "email": "...", "phone": null}`;
// a null clears the attribute. Values must be strings or null: a number or boolean is a bad
// line, not guessed into a string. Blank lines are skipped.
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { checkRow, quoteName, type LoadLine, type LoadSubject } from './load-row.js';

/**
 * Keys that hold the id. NOTE: `userId` names the id only in a users file: in an accounts file
 * it is an attribute like any other (and `accountId` likewise in a users file).
 */
export const ID_KEYS: Record<LoadSubject, readonly string[]> = {
  user: ['id', 'userId'],
  account: ['id', 'accountId'],
};

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

export function parseJsonLine(line: number, text: string, subject: LoadSubject): LoadLine | undefined {
  if (text.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // TRICKY: not the parser's message: V8 quotes the text around the error.
    return { kind: 'bad', line, reason: 'invalid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'bad', line, reason: `expected a JSON object, got ${value === null ? 'null' : typeName(value)}` };
  }
  const idKeys = ID_KEYS[subject];
  const given = idKeys.filter((k) => Object.hasOwn(value, k));
  if (given.length === 0) return { kind: 'bad', line, reason: `no id: give it as ${idKeys.map((k) => `"${k}"`).join(' or ')}` };
  if (given.length > 1) return { kind: 'bad', line, reason: `both ${given.map((k) => `"${k}"`).join(' and ')} given: use one id key` };
  const idKey = given[0] ?? 'id';
  const entries: [string, string | null][] = [];
  let id: unknown;
  for (const [key, v] of Object.entries(value)) {
    if (key === idKey) {
      id = v;
      continue;
    }
    if (v !== null && typeof v !== 'string') return { kind: 'bad', line, reason: `key ${quoteName(key)}: value must be a string or null, got ${typeName(v)}` };
    entries.push([key, v]);
  }
  if (typeof id !== 'string') return { kind: 'bad', line, reason: `"${idKey}" must be a string, got ${id === null ? 'null' : typeName(id)}` };
  return checkRow(line, id, entries, 'key');
}

/** Streams a JSONL file as LoadLines; line numbers count every line, blank ones too. */
export async function* readJsonlLines(input: Readable, subject: LoadSubject): AsyncGenerator<LoadLine> {
  input.setEncoding('utf8');
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of lines) {
      line++;
      // NOTE: a UTF-8 BOM survives decoding as U+FEFF at the start of line 1.
      const parsed = parseJsonLine(line, line === 1 ? text.replace(/^\uFEFF/, '') : text, subject);
      if (parsed) yield parsed;
    }
  } finally {
    lines.close();
    input.destroy();
  }
}
