// The functions an analyst statement may call: default-deny allow-lists (names compared
// case-insensitively, as the engine does for most of them), aggregate combinators included.
import type { Who } from './analyst-engines.js';

/**
 * Curated by category from chDB 26.7's system.functions. Left out on purpose: file(), dictGet*,
 * joinGet*, the ai* functions (they call a model over the network), catboostEvaluate/evalMLMethod,
 * introspection, host/user/server/setting/query-id getters, sleep*, formatRow (format schemas are
 * files), URL functions with a custom TLD list, regionTo* (embedded dictionaries), and anything
 * internal.
 */
const SCALAR_FUNCTIONS = `
  and or not xor if multiIf caseWithExpression caseWithoutExpression greatest least clamp
  equals notEquals less greater lessOrEquals greaterOrEquals isDistinctFrom isNotDistinctFrom
  in notIn globalIn globalNotIn nullIn notNullIn globalNullIn globalNotNullIn exists
  like notLike ilike notILike match
  plus minus multiply divide intDiv intDivOrZero intDivOrNull divideOrNull modulo moduloOrZero moduloOrNull
  positiveModulo positiveModuloOrNull negate abs gcd lcm max2 min2 avg2 midpoint isFinite isInfinite isNaN
  ifNotFinite sqr byteSwap divideDecimal multiplyDecimal mod pmod power ln ceiling truncate
  tuple tupleElement untuple array arrayElement arrayElementOrNull map lambda identity materialize ignore
  assumeNotNull coalesce firstNonDefault ifNull isNotNull isNull isNullable isZeroOrNull nullIf toNullable
  ceil floor round roundAge roundBankers roundDown roundDuration roundToExp2 trunc
  acos acosh asin asinh atan atan2 atanh cbrt cos cosh degrees e erf erfc exp exp10 exp2 factorial hypot
  intExp10 intExp2 isPrime lgamma log log10 log1p log2 pi pow proportionsZTest radians sigmoid sign sin sinh
  sqrt tan tanh tgamma widthBucket width_bucket
  bitAnd bitCount bitHammingDistance bitNot bitOr bitRotateLeft bitRotateRight bitShiftLeft bitShiftRight
  bitSlice bitTest bitTestAll bitTestAny bitXor
  bitmapAnd bitmapAndCardinality bitmapAndnot bitmapAndnotCardinality bitmapBuild bitmapCardinality
  bitmapContains bitmapHasAll bitmapHasAny bitmapMax bitmapMin bitmapOr bitmapOrCardinality
  bitmapSubsetInRange bitmapSubsetLimit bitmapToArray bitmapTransform bitmapXor bitmapXorCardinality subBitmap
  arrayAll arrayAUCPR arrayAvg arrayCompact arrayConcat arrayCount arrayCumSum arrayCumSumNonNegative
  arrayDifference arrayDistinct arrayDotProduct arrayEnumerate arrayEnumerateDense arrayEnumerateDenseRanked
  arrayEnumerateUniq arrayEnumerateUniqRanked arrayExcept arrayExists arrayFill arrayFilter arrayFirst
  arrayFirstIndex arrayFirstOrNull arrayFlatten arrayFold arrayIntersect arrayJaccardIndex arrayJoin arrayLast
  arrayLastIndex arrayLastOrNull arrayLevenshteinDistance arrayMap arrayMax arrayMin arrayPartialReverseSort
  arrayPartialSort arrayPopBack arrayPopFront arrayProduct arrayPushBack arrayPushFront arrayROCAUC
  arrayReduce arrayReduceInRanges arrayRemove arrayResize arrayReverse arrayReverseFill arrayReverseSort
  arrayReverseSplit arrayRotateLeft arrayRotateRight arrayShiftLeft arrayShiftRight arraySlice arraySort
  arraySplit arraySum arraySymmetricDifference arrayTopK arrayUnion arrayUniq arrayWithConstant arrayZip
  arrayZipUnaligned arrayShingles arraySimilarity countEqual empty notEmpty has hasAll hasAny hasSubstr
  indexOf length range replicate reverse flatten unnest arrayStringConcat
  emptyArrayDate emptyArrayDateTime emptyArrayFloat32 emptyArrayFloat64 emptyArrayInt16 emptyArrayInt32
  emptyArrayInt64 emptyArrayInt8 emptyArrayString emptyArrayToSingle emptyArrayUInt16 emptyArrayUInt32
  emptyArrayUInt64 emptyArrayUInt8
  extractKeyValuePairs extractKeyValuePairsWithEscaping mapAdd mapAll mapApply mapConcat mapContains
  mapContainsKey mapContainsKeyLike mapContainsValue mapContainsValueLike mapExists mapExtractKeyLike
  mapExtractValueLike mapFilter mapFromArrays mapKeys mapPartialReverseSort mapPartialSort mapPopulateSeries
  mapReverseSort mapSort mapSubtract mapUpdate mapValues
  dotProduct flattenTuple tupleConcat tupleDivide tupleDivideByNumber tupleHammingDistance tupleIntDiv
  tupleIntDivByNumber tupleIntDivOrZero tupleIntDivOrZeroByNumber tupleMinus tupleModulo tupleModuloByNumber
  tupleMultiply tupleMultiplyByNumber tupleNames tupleNegate tuplePlus tuplePositiveModuloByNumber
  tupleToNameValuePairs
  L1Distance L1Norm L1Normalize L2Distance L2Norm L2Normalize L2SquaredDistance L2SquaredNorm LinfDistance
  LinfNorm LinfNormalize LpDistance LpNorm LpNormalize cosineDistance
  now now64 today yesterday timezone timeZone timezoneOf timeZoneOf timezoneOffset timeZoneOffset serverTimezone
  toTimezone toTimeZone UTCTimestamp toUTCTimestamp fromUTCTimestamp current_date current_timestamp curdate localtimestamp
  toYear toQuarter toMonth toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond toMillisecond
  toMicrosecond toNanosecond toISOYear toISOWeek toWeek toYearWeek toDaysInMonth toLastDayOfMonth
  toLastDayOfWeek toMonday toUnixTimestamp toRelativeYearNum toRelativeQuarterNum toRelativeMonthNum
  toRelativeWeekNum toRelativeDayNum toRelativeHourNum toRelativeMinuteNum toRelativeSecondNum
  toMonthNumSinceEpoch toYearNumSinceEpoch toDaysSinceYearZero fromDaysSinceYearZero fromDaysSinceYearZero32
  toModifiedJulianDay toModifiedJulianDayOrNull fromModifiedJulianDay fromModifiedJulianDayOrNull
  toStartOfYear toStartOfISOYear toStartOfQuarter toStartOfMonth toStartOfWeek toStartOfDay toStartOfHour
  toStartOfMinute toStartOfSecond toStartOfMillisecond toStartOfMicrosecond toStartOfNanosecond
  toStartOfFiveMinutes toStartOfFiveMinute toStartOfTenMinutes toStartOfFifteenMinutes toStartOfInterval
  toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss YYYYMMDDToDate YYYYMMDDToDate32 YYYYMMDDhhmmssToDateTime
  YYYYMMDDhhmmssToDateTime64 dateDiff date_diff timestampDiff timestamp_diff age dateName dateTrunc date_trunc
  date_bin time_bucket monthName formatDateTime formatDateTimeInJodaSyntax date_format fromUnixTimestamp
  from_unixtime fromUnixTimestampInJodaSyntax to_unixtime makeDate makeDate32 makeDateTime makeDateTime64
  timeSlot timeSlots timeDiff toTimeWithFixedDate addDate subDate addInterval subtractInterval
  addTupleOfIntervals subtractTupleOfIntervals addYears addQuarters addMonths addWeeks addDays addHours
  addMinutes addSeconds addMilliseconds addMicroseconds addNanoseconds subtractYears subtractQuarters
  subtractMonths subtractWeeks subtractDays subtractHours subtractMinutes subtractSeconds
  subtractMilliseconds subtractMicroseconds subtractNanoseconds changeYear changeMonth changeDay changeHour
  changeMinute changeSecond year quarter month week yearweek day dayofmonth dayofweek dayofyear hour minute
  second last_day to_days from_days str_to_date
  tumble tumbleStart tumbleEnd hop hopStart hopEnd windowID
  CAST accurateCast accurateCastOrDefault accurateCastOrNull DATE timestamp toBool toString toStringCutToZero
  toFixedString toLowCardinality toDecimalString toInterval toIntervalYear toIntervalQuarter toIntervalMonth
  toIntervalWeek toIntervalDay toIntervalHour toIntervalMinute toIntervalSecond toIntervalMillisecond
  toIntervalMicrosecond toIntervalNanosecond toDate toDate32 toDateTime toDateTime32 toDateTime64 toTime toTime64
  toUUID toUUIDOrZero toUUIDOrNull toUUIDOrDefault toIPv4 toIPv4OrDefault toIPv4OrNull toIPv4OrZero toIPv6
  toIPv6OrDefault toIPv6OrNull toIPv6OrZero
  parseDateTime parseDateTimeOrNull parseDateTimeOrZero parseDateTimeInJodaSyntax
  parseDateTimeInJodaSyntaxOrNull parseDateTimeInJodaSyntaxOrZero parseDateTime64 parseDateTime64OrNull
  parseDateTime64OrZero parseDateTime64InJodaSyntax parseDateTime64InJodaSyntaxOrNull
  parseDateTime64InJodaSyntaxOrZero parseDateTimeBestEffort parseDateTimeBestEffortOrNull
  parseDateTimeBestEffortOrZero parseDateTimeBestEffortUS parseDateTimeBestEffortUSOrNull
  parseDateTimeBestEffortUSOrZero parseDateTime32BestEffort parseDateTime32BestEffortOrNull
  parseDateTime32BestEffortOrZero parseDateTime64BestEffort parseDateTime64BestEffortOrNull
  parseDateTime64BestEffortOrZero parseDateTime64BestEffortUS parseDateTime64BestEffortUSOrNull
  parseDateTime64BestEffortUSOrZero
  fromUnixTimestamp64Second fromUnixTimestamp64Milli fromUnixTimestamp64Micro fromUnixTimestamp64Nano
  toUnixTimestamp64Second toUnixTimestamp64Milli toUnixTimestamp64Micro toUnixTimestamp64Nano
  reinterpret reinterpretAsDate reinterpretAsDateTime reinterpretAsFixedString reinterpretAsFloat32
  reinterpretAsFloat64 reinterpretAsInt8 reinterpretAsInt16 reinterpretAsInt32 reinterpretAsInt64
  reinterpretAsInt128 reinterpretAsInt256 reinterpretAsString reinterpretAsUInt8 reinterpretAsUInt16
  reinterpretAsUInt32 reinterpretAsUInt64 reinterpretAsUInt128 reinterpretAsUInt256 reinterpretAsUUID
  CRC32 CRC32IEEE CRC64 appendTrailingCharIfAbsent ascii base32Decode base32Encode base58Decode base58Encode
  base64Decode base64Encode base64URLDecode base64URLEncode tryBase32Decode tryBase58Decode tryBase64Decode
  tryBase64URLDecode basename byteHammingDistance caseFoldUTF8 compareSubstrings concat concatAssumeInjective
  concatWithSeparator concatWithSeparatorAssumeInjective concat_ws damerauLevenshteinDistance
  decodeHTMLComponent decodeXMLComponent editDistance editDistanceUTF8 levenshteinDistance
  levenshteinDistanceUTF8 encodeXMLComponent endsWith endsWithCaseInsensitive endsWithCaseInsensitiveUTF8
  endsWithUTF8 extractTextFromHTML firstLine initcap initcapUTF8 isValidASCII isValidUTF8 jaroSimilarity
  jaroWinklerSimilarity left leftPad leftPadUTF8 leftUTF8 lpad rpad lengthUTF8 char_length character_length
  octet_length lower lowerUTF8 lcase upper upperUTF8 ucase naturalSortKey normalizeUTF8NFC normalizeUTF8NFD
  normalizeUTF8NFKC normalizeUTF8NFKD removeDiacriticsUTF8 repeat reverseUTF8 right rightPad rightPadUTF8
  rightUTF8 soundex space startsWith startsWithCaseInsensitive startsWithCaseInsensitiveUTF8 startsWithUTF8
  stringJaccardIndex stringJaccardIndexUTF8 substring substr mid substringIndex substring_index
  substringIndexUTF8 substringUTF8 toValidUTF8 trim trimBoth trimLeft ltrim trimRight rtrim hex unhex bin unbin
  char bitmaskToArray bitmaskToList bitPositionsToArray format overlay overlayUTF8 printf regexpQuoteMeta
  replace replaceAll replaceOne replaceRegexpAll replaceRegexpOne regexp_replace translate translateUTF8
  countMatches countMatchesCaseInsensitive countSubstrings countSubstringsCaseInsensitive
  countSubstringsCaseInsensitiveUTF8 extract regexp_extract regexpExtract extractAll extractAllGroups
  extractAllGroupsHorizontal extractAllGroupsVertical extractGroups hasToken hasTokenCaseInsensitive
  hasTokenCaseInsensitiveOrNull hasTokenOrNull hasSubsequence hasSubsequenceCaseInsensitive
  hasSubsequenceCaseInsensitiveUTF8 hasSubsequenceUTF8 locate instr position positionCaseInsensitive
  positionCaseInsensitiveUTF8 positionUTF8 multiMatchAny multiMatchAnyIndex multiMatchAllIndices
  multiSearchAllPositions multiSearchAllPositionsUTF8 multiSearchAny multiSearchAnyUTF8
  multiSearchAnyCaseInsensitive multiSearchAnyCaseInsensitiveUTF8 multiSearchFirstIndex
  multiSearchFirstIndexUTF8 multiSearchFirstPosition multiSearchFirstPositionUTF8 ngramDistance
  ngramDistanceUTF8 ngramSearch ngramSearchUTF8 regexpPosition
  alphaTokens ngrams splitByChar splitByNonAlpha splitByRegexp splitByString splitByWhitespace tokens
  reverseBySeparator
  MD4 MD5 SHA1 SHA224 SHA256 SHA384 SHA512 SHA512_256 RIPEMD160 cityHash64 farmFingerprint64 farmHash64
  halfMD5 intHash32 intHash64 javaHash metroHash64 murmurHash2_32 murmurHash2_64 murmurHash3_32
  murmurHash3_64 murmurHash3_128 sipHash64 sipHash128 xxHash32 xxHash64 xxh3 xxh3_128 wyHash64 URLHash
  jumpConsistentHash kostikConsistentHash
  IPv4CIDRToRange IPv4NumToString IPv4NumToStringClassC IPv4StringToNum IPv4StringToNumOrDefault
  IPv4StringToNumOrNull IPv4ToIPv6 IPv6CIDRToRange IPv6NumToString IPv6StringToNum IPv6StringToNumOrDefault
  IPv6StringToNumOrNull cutIPv6 isIPAddressInRange isIPv4String isIPv6String MACNumToString MACStringToNum
  MACStringToOUI
  JSONArrayLength JSONExtract JSONExtractArrayRaw JSONExtractBool JSONExtractFloat JSONExtractInt
  JSONExtractKeys JSONExtractKeysAndValues JSONExtractKeysAndValuesRaw JSONExtractRaw JSONExtractString
  JSONExtractUInt JSONHas JSONKey JSONLength JSONType JSON_EXISTS JSON_QUERY JSON_VALUE JSONMergePatch
  isValidJSON toJSONString simpleJSONExtractBool simpleJSONExtractFloat simpleJSONExtractInt
  simpleJSONExtractRaw simpleJSONExtractString simpleJSONExtractUInt simpleJSONHas visitParamExtractBool
  visitParamExtractFloat visitParamExtractInt visitParamExtractRaw visitParamExtractString
  visitParamExtractUInt visitParamHas JSONAllPaths JSONAllPathsWithTypes JSONDynamicPaths
  JSONDynamicPathsWithTypes JSONSharedDataPaths JSONSharedDataPathsWithTypes dynamicElement dynamicType
  variantElement variantType getSubcolumn
  protocol domain domainRFC domainWithoutWWW domainWithoutWWWRFC topLevelDomain topLevelDomainRFC
  firstSignificantSubdomain firstSignificantSubdomainRFC cutToFirstSignificantSubdomain
  cutToFirstSignificantSubdomainRFC cutToFirstSignificantSubdomainWithWWW
  cutToFirstSignificantSubdomainWithWWWRFC port portRFC path pathFull queryString fragment
  queryStringAndFragment extractURLParameter extractURLParameters extractURLParameterNames URLHierarchy
  URLPathHierarchy encodeURLComponent decodeURLComponent encodeURLFormComponent decodeURLFormComponent netloc
  cutWWW cutQueryString cutFragment cutQueryStringAndFragment cutURLParameter
  UUIDNumToString UUIDStringToNum UUIDToNum UUIDv7ToDateTime generateUUIDv4 generateUUIDv7
  rand rand32 rand64 randCanonical randConstant randUniform randNormal randBernoulli randomString
  randomFixedString randomPrintableASCII
  toTypeName toColumnTypeName isConstant throwIf transform finalizeAggregation initializeAggregation
  runningAccumulate runningDifference runningDifferenceStartingWithFirstValue neighbor bar visibleWidth
  formatReadableSize formatReadableDecimalSize formatReadableQuantity formatReadableTimeDelta
  parseReadableSize parseReadableSizeOrNull parseReadableSizeOrZero parseTimeDelta countDigits
  errorCodeToName byteSize grouping
`;

/** Integer and float conversions: the engine generates these families (toInt8 … toUInt256OrDefault). */
const NUMERIC_CONVERSION = /^to(?:U?Int(?:8|16|32|64|128|256)|Float(?:32|64)|BFloat16|Decimal(?:32|64|128|256)|Date|Date32|DateTime|DateTime64|Time|Time64)(?:OrZero|OrNull|OrDefault)?$/i;

const AGGREGATE_FUNCTIONS = `
  count sum avg min max any anyLast anyHeavy any_value first_value last_value argMin argMax argAndMin argAndMax
  min_by max_by avgWeighted sumWithOverflow sumKahan sumCount uniq uniqExact uniqCombined uniqCombined64
  uniqHLL12 uniqTheta uniqUpTo groupArray groupArrayLast groupArraySorted groupArraySample groupArrayInsertAt
  groupArrayIntersect groupUniqArray groupArrayMovingAvg groupArrayMovingSum groupConcat group_concat
  string_agg array_agg array_concat_agg groupBitAnd groupBitOr groupBitXor groupBitmap groupBitmapAnd
  groupBitmapOr groupBitmapXor bit_and bit_or bit_xor topK topKWeighted approx_top_k approx_top_count
  approx_top_sum histogram sumMapWithOverflow sumMapFiltered sumMapFilteredWithOverflow
  sumMappedArrays minMappedArrays maxMappedArrays
  quantile quantiles quantileExact quantilesExact quantileExactLow quantilesExactLow quantileExactHigh
  quantilesExactHigh quantileExactExclusive quantilesExactExclusive quantileExactInclusive
  quantilesExactInclusive quantileExactWeighted quantilesExactWeighted quantileExactWeightedInterpolated
  quantilesExactWeightedInterpolated quantileInterpolatedWeighted quantilesInterpolatedWeighted
  quantileTiming quantilesTiming quantileTimingWeighted quantilesTimingWeighted quantileTDigest
  quantilesTDigest quantileTDigestWeighted quantilesTDigestWeighted quantileBFloat16 quantilesBFloat16
  quantileBFloat16Weighted quantilesBFloat16Weighted quantileDeterministic quantilesDeterministic quantileDD
  quantilesDD quantileGK quantilesGK median medianExact medianExactLow medianExactHigh medianExactWeighted
  medianTiming medianTimingWeighted medianTDigest medianTDigestWeighted medianBFloat16 medianDeterministic
  medianDD medianGK medianInterpolatedWeighted
  stddevPop stddevSamp stddevPopStable stddevSampStable varPop varSamp varPopStable varSampStable std stddev
  stddev_pop stddev_samp var_pop var_samp covarPop covarSamp covarPopStable covarSampStable covar_pop
  covar_samp corr corrStable corrMatrix covarPopMatrix covarSampMatrix skewPop skewSamp kurtPop kurtSamp
  entropy simpleLinearRegression rankCorr boundingRatio deltaSum deltaSumTimestamp exponentialMovingAverage
  exponentialTimeDecayedAvg exponentialTimeDecayedCount exponentialTimeDecayedMax exponentialTimeDecayedSum
  intervalLengthSum maxIntersections maxIntersectionsPosition sparkbar sparkBar largestTriangleThreeBuckets
  lttb nonNegativeDerivative singleValueOrNull cramersV cramersVBiasCorrected theilsU contingency
  categoricalInformationValue studentTTest welchTTest mannWhitneyUTest meanZTest kolmogorovSmirnovTest
  studentTTestOneSample analysisOfVariance anova
  windowFunnel retention sequenceMatch sequenceCount sequenceNextNode sequenceMatchEvents
  row_number rank dense_rank denseRank percent_rank percentRank cume_dist ntile lag lead lagInFrame
  leadInFrame nth_value
  anyRespectNulls anyLastRespectNulls firstValueRespectNulls lastValueRespectNulls first_value_respect_nulls
  last_value_respect_nulls any_respect_nulls anyLast_respect_nulls any_value_respect_nulls
  anyValueRespectNulls
`;

/** Aggregate function combinators (system.aggregate_function_combinators), longest first. */
const COMBINATORS = ['MergeState', 'SimpleState', 'OrDefault', 'Distinct', 'Resample', 'ForEach', 'OrNull', 'ArgMax', 'ArgMin', 'Array', 'State', 'Merge', 'Tuple', 'Null', 'Map', 'If'].map((c) =>
  c.toLowerCase(),
);

/** What the operator may use beyond the tenants' list: introspection of the server itself. */
const OPERATOR_FUNCTIONS = `
  version uptime hostName fqdn currentDatabase currentUser getSetting getSettingOrDefault serverUUID
  blockSize rowNumberInBlock rowNumberInAllBlocks formatQuery formatQuerySingleLine normalizeQuery
  normalizedQueryHash hasColumnInTable joinGet joinGetOrNull dumpColumnStructure toColumnTypeName
`;

/** Table functions of the operator: generated rows only, no files, URLs, remotes or dictionaries. */
export const OPERATOR_TABLE_FUNCTIONS = new Set(['numbers', 'numbers_mt', 'zeros', 'zeros_mt', 'values', 'generate_series', 'generateSeries']);

const words = (s: string): Set<string> => new Set(s.split(/\s+/).filter(Boolean).map((w) => w.toLowerCase()));
const SCALAR_SET = words(SCALAR_FUNCTIONS);
const AGGREGATE_SET = words(AGGREGATE_FUNCTIONS);
const OPERATOR_SET = words(OPERATOR_FUNCTIONS);

/** The allow-lists as written, for tests that check every name exists in the engine. */
export const FUNCTION_ALLOW_LISTS = Object.freeze({
  scalar: [...SCALAR_FUNCTIONS.split(/\s+/).filter(Boolean)],
  aggregate: [...AGGREGATE_FUNCTIONS.split(/\s+/).filter(Boolean)],
  operator: [...OPERATOR_FUNCTIONS.split(/\s+/).filter(Boolean)],
  operatorTableFunctions: [...OPERATOR_TABLE_FUNCTIONS],
});

export function isAllowedFunction(name: string, kind: Who['kind']): boolean {
  const lower = name.toLowerCase();
  if (SCALAR_SET.has(lower) || AGGREGATE_SET.has(lower) || NUMERIC_CONVERSION.test(name)) return true;
  if (kind === 'operator' && OPERATOR_SET.has(lower)) return true;
  // an aggregate with combinators: sumIf, uniqMerge, countDistinct, avgOrNull, sumArrayIfOrNull …
  let base = lower;
  for (let stripped = true; stripped; ) {
    stripped = false;
    for (const c of COMBINATORS) {
      if (base.length > c.length && base.endsWith(c)) {
        base = base.slice(0, -c.length);
        stripped = true;
        if (AGGREGATE_SET.has(base)) return true;
        break;
      }
    }
  }
  return false;
}
