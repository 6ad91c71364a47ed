// Schema patterns on a linear-time engine (re2js): a tracking plan's `pattern` and
// `patternProperties` run against every event, so a backtracking pattern such as `(a+)+$` must
// not be able to stall the collector. ajv's `code.regExp` hook builds every pattern through
// here; a pattern RE2 cannot run (backreferences, lookaround) is refused when the plan is PUT.
import { RE2JS } from 're2js';
import type { CodeOptions } from 'ajv';

type RegExpEngine = NonNullable<CodeOptions['regExp']>;
type RegExpLike = ReturnType<RegExpEngine>;

export type PatternOutcome = { ok: true; regexp: RegExpLike } | { ok: false; message: string };

/**
 * Compiles an ECMA-262 pattern (JSON Schema's dialect) for RE2. RE2 takes the same syntax for
 * what plans use (classes, anchors, quantifiers, groups, `\d\w\s`, `\p{…}`); only `\uXXXX` and
 * `\u{…}` are spelled `\x{…}`. NOTE: no wholesale translation (RE2JS.translateRegExp rewrites the
 * named backreference `\k<n>` into the literal `k<n>`: a silent change of meaning).
 * Differences left: RE2's `\s` is ASCII whitespace only; `\b` is ASCII word boundaries.
 */
export function compileLinearPattern(pattern: string): PatternOutcome {
  if (/\\k</.test(pattern.replace(/\\\\/g, ''))) return { ok: false, message: 'backreferences (\\k<name>) are not supported: patterns run on a linear-time engine' };
  let re: RE2JS;
  try {
    re = RE2JS.compile(ecmaEscapesToRe2(pattern));
  } catch (err) {
    // NOTE: RE2's message quotes the part of the pattern it refuses: schema text, never event data
    const detail = err instanceof Error ? err.message.replace(/^error parsing regexp: /, '') : 'unparseable';
    return { ok: false, message: `pattern not supported by the linear-time engine (no backreferences or lookaround): ${detail}` };
  }
  return { ok: true, regexp: { test: (s: string) => re.test(s), toString: () => `re2:${pattern}` } as RegExpLike };
}

/** The ajv engine: every pattern it builds was checked at PUT (planPatternProblem); a failure here throws. */
export const linearRegExp: RegExpEngine = Object.assign(
  (pattern: string): RegExpLike => {
    const r = compileLinearPattern(pattern);
    if (!r.ok) throw new Error(r.message);
    return r.regexp;
  },
  // NOTE: only read by ajv's standalone code generation, which Tracklane does not use
  { code: 're2js' },
);

function ecmaEscapesToRe2(p: string): string {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = p[i + 1];
    if (next === 'u') {
      const braced = /^\{([0-9a-fA-F]{1,6})\}/.exec(p.slice(i + 2));
      if (braced) {
        out += `\\x{${braced[1]}}`;
        i += 1 + braced[0].length;
        continue;
      }
      const four = /^[0-9a-fA-F]{4}/.exec(p.slice(i + 2));
      if (four) {
        out += `\\x{${four[0]}}`;
        i += 5;
        continue;
      }
    }
    // any other escape, kept as written (an escaped backslash is consumed whole)
    out += c + (next ?? '');
    i++;
  }
  return out;
}
