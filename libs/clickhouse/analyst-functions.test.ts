// The function allow-lists (analyst-functions.ts), combinators included.
import { describe, expect, it } from 'vitest';
import { isAllowedFunction } from './analyst-functions.js';

describe('isAllowedFunction', () => {
  it.each([
    // operators the parser produces
    'equals', 'and', 'or', 'not', 'in', 'notIn', 'globalIn', 'lambda', 'tuple', 'tupleElement', 'arrayElement', 'CAST',
    'multiIf', 'caseWithExpression', 'like', 'ilike', 'isNull', 'toIntervalDay', 'exists', 'negate', 'concat',
    // aggregates with combinators
    'count', 'COUNT', 'countIf', 'COUNTDistinct', 'sumIf', 'sumArray', 'uniqState', 'uniqMerge', 'avgOrNull',
    'sumIfOrNull', 'groupArrayDistinct', 'argMaxIf', 'quantilesTDigestIf', 'sumForEach', 'countResample', 'minMap',
    'windowFunnel', 'retention', 'sequenceMatch',
    // window functions
    'row_number', 'rank', 'dense_rank', 'lagInFrame', 'leadInFrame', 'first_value', 'nth_value', 'ntile',
    // dates, strings, arrays, maps, JSON, conversions, URLs
    'toStartOfDay', 'dateDiff', 'DATE_TRUNC', 'formatDateTime', 'lower', 'replaceRegexpAll', 'splitByChar',
    'arrayMap', 'arrayFilter', 'arrayJoin', 'has', 'mapKeys', 'JSONExtractString', 'toUInt32OrZero', 'toInt64',
    'toDecimal64OrNull', 'toDateTime64', 'domain', 'extractURLParameter', 'cityHash64', 'coalesce', 'round',
  ])('allows %s', (name) => {
    expect(isAllowedFunction(name, 'tenant')).toBe(true);
  });

  it.each([
    'file', 'dictGet', 'dictGetString', 'dictHas', 'joinGet', 'joinGetOrNull', 'url', 'remote', 's3', 'aiGenerate',
    'catboostEvaluate', 'evalMLMethod', 'sleep', 'sleepEachRow', 'currentUser', 'hostName', 'getSetting',
    'getServerSetting', 'getMacro', 'hasColumnInTable', 'filesystemAvailable', 'formatRow', 'addressToSymbol',
    'regionToName', 'version', 'uptime', 'currentQueryID', 'fileIf', 'dictGetOrNull', '_CAST', '__getScalar',
    'cutToFirstSignificantSubdomainCustom', 'numbers',
  ])('refuses %s', (name) => {
    expect(isAllowedFunction(name, 'tenant')).toBe(false);
  });

  it('gives the operator server introspection but still no files, dictionaries or network', () => {
    for (const f of ['version', 'uptime', 'currentDatabase', 'getSetting', 'joinGet']) expect(isAllowedFunction(f, 'operator')).toBe(true);
    for (const f of ['file', 'dictGet', 'url', 'aiGenerate', 'catboostEvaluate']) expect(isAllowedFunction(f, 'operator')).toBe(false);
  });
});
