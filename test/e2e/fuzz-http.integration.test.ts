// Property-based fuzzing of a running collector over HTTP (the embedded pipeline, in process,
// chDB behind it): hostile bodies, encodings, content types, headers, Authorization forms and
// raw malformed HTTP, plus batches mixing valid and invalid messages. Properties: no 5xx for
// bad input; every message the collector accepted is stored; the process stays healthy.
// Deterministic: FUZZ_SEED (default below) reruns a failure exactly.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../libs/core/logger.js';
import { embeddedConfigSchema } from '../../services/embedded/config.js';
import { startEmbedded, type EmbeddedServer } from '../../services/embedded/embedded-runner.js';
import { eventually } from '../support/poll.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261201);
const RUNS = 520;
const MAX_REQUEST_BYTES = 500 * 1024;

let server: EmbeddedServer;
let dataDir: string;
let tenant: string;
let writeKey: string;
let seq = 0;
/** messageIds the collector answered as accepted: each must be stored */
const accepted: string[] = [];
const statusCounts: Record<string, number> = {};

/** The write key of a new tenant, whichever shape createTenant answers (the key API is changing). */
function writeKeyOf(created: unknown): string {
  const r = created as { writeKey?: unknown; tenant?: { writeKey?: unknown } };
  const key = r.writeKey ?? r.tenant?.writeKey;
  if (typeof key !== 'string' || key === '') throw new Error('createTenant answered no write key');
  return key;
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'tracklane-fuzz-http-'));
  const config = embeddedConfigSchema.parse({
    PORT: '0',
    TRACKLANE_DATA_DIR: dataDir,
    TRACKLANE_MASTER_KEY: `base64:${randomBytes(32).toString('base64')}`,
    TRACKLANE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    MAX_REQUEST_BYTES: String(MAX_REQUEST_BYTES),
  });
  server = await startEmbedded(config, createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }));
  tenant = `fuzz-${randomBytes(3).toString('hex')}`;
  writeKey = writeKeyOf(await server.tenants.createTenant(tenant));
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

// ── messages ────────────────────────────────────────────────────────────────────────────────

const nextId = (tag: string) => `fz-${tag}-${++seq}`;
const ADVERSARIAL_URLS = [
  `https://a.io/${'a'.repeat(8000)}@`,
  `https://a.io/@${'a.'.repeat(4000)}`,
  `https://a.io/x@${'a.1'.repeat(2600)}`,
  `https://a.io/?${'%=&'.repeat(2650)}`,
  `https://${'@'.repeat(8000)}`,
  `/?${'email=a@b.co&'.repeat(560)}`,
  `/${'\uD800'.repeat(1300)}`, // 6 characters each once JSON-encoded
];
const hostileText = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
  fc.constantFrom(...ADVERSARIAL_URLS, '', ' ', '__proto__', 'NaN', '1e400', 'bob@example.com', '%40%2b%%', '\u0000'),
);

/** A message the collector must accept (and store), with hostile but legal content. */
const validMessage = fc
  .record({
    type: fc.constantFrom('track', 'page', 'identify', 'screen', 'click'),
    url: fc.option(fc.constantFrom(...ADVERSARIAL_URLS, 'https://acme.com/?token=abc&email=bob%40x.io'), { nil: undefined }),
    title: fc.option(hostileText.map((t) => t.slice(0, 500)), { nil: undefined }),
    extra: fc.dictionary(fc.constantFrom('constructor', 'toString', 'plan', ' k ', 'é'), fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 20 })), { maxKeys: 4 }),
  })
  .map(({ type, url, title, extra }) => () => ({
    type,
    messageId: nextId('ok'),
    userId: 'fuzz-user',
    event: 'Fuzzed',
    properties: { ...extra, ...(url === undefined ? {} : { url }), ...(title === undefined ? {} : { title }) },
    context: { page: { referrer: 'https://ref.io/?password=x' }, userAgent: 'fuzz/1' },
  }));

/** Stands for 20,000 nested arrays, spliced into the JSON text (JSON.stringify would overflow its stack). */
const DEEP = '__deep_nesting__';
const toJson = (v: unknown) => JSON.stringify(v).replaceAll(`"${DEEP}"`, `${'['.repeat(20_000)}1${']'.repeat(20_000)}`);

/** A message the collector must reject by itself (its valid siblings still stored). */
const INVALID: (() => unknown)[] = [
  () => ({ type: 'bogus', userId: 'u', messageId: nextId('bad') }),
  // NOTE: an event naming no id at all is valid (cookieless mode derives one); one given blank is not
  () => ({ type: 'track', event: 'E', anonymousId: '', messageId: nextId('bad') }),
  () => ({ type: 'track', userId: 'u', messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: '   ', messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'x'.repeat(129), messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: { id: 1 }, messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'u', timestamp: '1970-01-01T00:00:00Z', messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'u', timestamp: 'soon', messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'u', properties: [], messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'u', properties: { big: 'x'.repeat(9000) }, messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'u', properties: Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`k${i}`, i])), messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'u', properties: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`p${i}`, 'y'.repeat(7000)])), messageId: nextId('bad') }),
  () => ({ type: 'track', event: 'E', userId: 'u', properties: { deep: DEEP }, messageId: nextId('bad') }),
  () => ({ type: 'alias', userId: 'u', previousId: ' ', messageId: nextId('bad') }),
  () => null,
  () => 42,
  () => 'a string',
  () => [],
];
const invalidMessage = fc.constantFrom(...INVALID.map((make, i) => Object.assign(make, { [fc.toStringMethod]: () => `invalid#${i}` })));

/** Anything: the response decides whether it was accepted. */
const unknownMessage = fc
  .record({
    type: fc.oneof(fc.constantFrom('track', 'page', 'group', 'alias', 'identify'), hostileText),
    userId: fc.oneof(hostileText, fc.integer(), fc.constant(undefined)),
    anonymousId: fc.option(hostileText, { nil: undefined }),
    event: fc.option(hostileText, { nil: undefined }),
    groupId: fc.option(hostileText, { nil: undefined }),
    previousId: fc.option(hostileText, { nil: undefined }),
    timestamp: fc.option(fc.oneof(hostileText, fc.integer(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())), { nil: undefined }),
    properties: fc.option(fc.dictionary(hostileText, fc.oneof(hostileText, fc.integer(), fc.constant(null)), { maxKeys: 5 }), { nil: undefined }),
    context: fc.option(fc.record({ ip: hostileText, page: fc.record({ url: hostileText, title: hostileText }), screen: fc.record({ width: fc.double() }) }, { requiredKeys: [] }), { nil: undefined }),
    element: fc.option(fc.record({ tag: hostileText, classes: fc.array(hostileText, { maxLength: 6 }), label: hostileText, href: hostileText }, { requiredKeys: [] }), { nil: undefined }),
  })
  .map((m) => () => ({ ...m, messageId: nextId('any') }));

type Expect = 'valid' | 'invalid' | 'unknown';
const batchEntry = fc.oneof(
  { weight: 3, arbitrary: validMessage.map((make) => ({ make, expect: 'valid' as Expect })) },
  { weight: 2, arbitrary: invalidMessage.map((make) => ({ make, expect: 'invalid' as Expect })) },
  { weight: 2, arbitrary: unknownMessage.map((make) => ({ make, expect: 'unknown' as Expect })) },
);

// ── transport ───────────────────────────────────────────────────────────────────────────────

interface Answer {
  status: number;
  body: Record<string, unknown> | null;
}

const basic = (user: string) => `Basic ${Buffer.from(user).toString('base64')}`;

async function post(path: string, body: Buffer | string, headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(`${server.url}${path}`, { method: 'POST', headers, body });
  const text = await res.text();
  let parsed: Record<string, unknown> | null = null;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = null;
  }
  return { status: res.status, body: parsed };
}

/** Raw bytes on a socket (malformed HTTP fetch cannot send): the final status (after any 1xx), or 0 when the server just closed. */
function raw(request: string | Buffer): Promise<number> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) });
    let data = '';
    const timer = setTimeout(() => socket.destroy(), 5_000);
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('error', () => undefined); // a reset is an answer too
    socket.on('close', () => {
      clearTimeout(timer);
      const statuses = [...data.matchAll(/^HTTP\/1\.[01] (\d{3})/gm)].map((m) => Number(m[1])).filter((st) => st >= 200);
      resolve(statuses[0] ?? 0);
    });
    socket.write(request, (err) => (err ? reject(err) : socket.end()));
  });
}

function encode(json: string, encoding: 'identity' | 'gzip' | 'deflate'): Buffer {
  const b = Buffer.from(json);
  return encoding === 'gzip' ? gzipSync(b) : encoding === 'deflate' ? deflateSync(b) : b;
}

// ── cases ───────────────────────────────────────────────────────────────────────────────────

interface Case {
  label: string;
  run(): Promise<void>;
}
const asCase = (label: string, run: () => Promise<void>): Case => ({ label, run, [fc.toStringMethod]: () => label }) as Case;

function noServerError(a: { status: number }, label: string): void {
  statusCounts[a.status] = (statusCounts[a.status] ?? 0) + 1;
  expect(a.status, `${label}: a 5xx for bad input`).toBeLessThan(500);
}

/** A batch of valid, invalid and unknown messages: the answer must match what was sent. */
const batchCase = fc
  .record({
    entries: fc.array(batchEntry, { minLength: 1, maxLength: 12 }),
    encoding: fc.constantFrom('identity', 'gzip', 'deflate', ' GZIP ') as fc.Arbitrary<'identity' | 'gzip' | 'deflate' | ' GZIP '>,
    contentType: fc.constantFrom('application/json', 'text/plain', 'application/json; charset=utf-8', 'text/plain;charset=UTF-8'),
    sentAt: fc.oneof(fc.constant(undefined), fc.constant(new Date().toISOString()), fc.constantFrom(1e300, 'garbage', -1, '+275760-09-13T00:00:00.000Z')),
    route: fc.constantFrom('batch', 'batch', 'batch', 'single'),
  })
  .map(({ entries, encoding, contentType, sentAt, route }) =>
    asCase(`batch ${route} [${entries.map((e) => e.expect[0]).join('')}] ${encoding} ${contentType} sentAt=${String(sentAt)}`, async () => {
      const list = route === 'single' ? entries.slice(0, 1) : entries;
      const messages = list.map((e) => e.make());
      const single = route === 'single';
      const body = single ? toJson(messages[0]) : toJson({ batch: messages, ...(sentAt === undefined ? {} : { sentAt }) });
      const enc = encoding === ' GZIP ' ? 'gzip' : encoding;
      const path = single ? `/v1/${(messages[0] as { type?: unknown } | null)?.type === 'page' ? 'page' : 'track'}` : '/v1/batch';
      const a = await post(path, encode(body, enc), {
        'content-type': contentType,
        authorization: basic(`${writeKey}:`),
        ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
      });
      noServerError(a, 'batch');
      if (single && (messages[0] === null || typeof messages[0] !== 'object' || Array.isArray(messages[0]))) {
        expect(a.status).toBe(400);
        return;
      }
      const errors = (a.body?.['errors'] as { index: number }[] | undefined) ?? [];
      const rejected = new Set(errors.map((e) => e.index));
      // NOTE: a single route sets the type from its path: the message's own type does not count
      const expects = single ? list.map((e) => (e.expect === 'valid' ? 'valid' : 'unknown')) : list.map((e) => e.expect);
      const anyValid = expects.includes('valid');
      if (anyValid) expect(a.status, JSON.stringify(a.body).slice(0, 300)).toBe(200);
      if (a.status === 200) {
        expect(a.body?.['accepted']).toBe(messages.length - rejected.size);
        messages.forEach((m, i) => {
          if (expects[i] === 'valid') expect(rejected.has(i), `valid message ${i} rejected: ${JSON.stringify(errors)}`).toBe(false);
          if (expects[i] === 'invalid') expect(rejected.has(i), `invalid message ${i} accepted`).toBe(true);
          if (!rejected.has(i)) accepted.push((m as { messageId: string }).messageId);
        });
      } else {
        expect(a.status).toBe(400);
        expect(expects.every((e) => e !== 'valid')).toBe(true);
      }
    }),
  );

/** A one-message batch, and the id to look for when it is accepted. */
function validBatch(tag: string): { json: string; id: string } {
  const id = nextId(tag);
  return { json: JSON.stringify({ batch: [{ type: 'track', event: 'E', userId: 'u', messageId: id }] }), id };
}

const badJsonCase = fc
  .tuple(fc.nat(), fc.constantFrom('truncate', 'garbage', 'bom', 'utf16', 'nul', 'trailing', 'empty', 'number', 'deep'))
  .map(([n, how]) =>
    asCase(`bad JSON ${how}`, async () => {
      const valid = validBatch('json').json;
      const body =
        how === 'truncate' ? valid.slice(0, n % valid.length)
        : how === 'garbage' ? Buffer.from(Array.from({ length: 1 + (n % 300) }, (_, i) => (n * 31 + i * 7) % 256))
        : how === 'bom' ? `\uFEFF${valid}`
        : how === 'utf16' ? Buffer.from(valid, 'utf16le')
        : how === 'nul' ? `${valid.slice(0, 10)}\u0000${valid.slice(10)}`
        : how === 'trailing' ? `${valid},`
        : how === 'empty' ? ''
        : how === 'number' ? '1e400'
        : `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
      const a = await post('/v1/batch', body, { 'content-type': 'application/json', authorization: basic(`${writeKey}:`) });
      noServerError(a, how);
      expect(a.status).toBeGreaterThanOrEqual(400);
    }),
  );

const contentTypeCase = fc
  .constantFrom('application/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'APPLICATION/JSON', 'application/json; charset=utf-16', 'application/json, text/plain', 'application/jsonx', ';', '', 'text/plain; charset=latin1', 'image/png')
  .map((contentType) =>
    asCase(`content-type ${JSON.stringify(contentType)}`, async () => {
      const { json, id } = validBatch('ctype');
      const a = await post('/v1/batch', json, { 'content-type': contentType, authorization: basic(`${writeKey}:`) });
      noServerError(a, contentType);
      if (a.status === 200) accepted.push(id);
    }),
  );

const compressedCase = fc
  .tuple(fc.constantFrom('truncated-gzip', 'flipped-gzip', 'raw-deflate', 'gzip-as-deflate', 'deflate-as-gzip', 'plain-as-gzip', 'brotli', 'gzip-of-gzip', 'x-gzip', 'gzip,gzip', 'gzip-trailing-garbage', 'empty-gzip'), fc.nat())
  .map(([how, n]) =>
    asCase(`compressed ${how}`, async () => {
      const { json, id } = validBatch('gz');
      const gz = gzipSync(json);
      const cases: Record<string, [Buffer, string]> = {
        'truncated-gzip': [gz.subarray(0, Math.max(1, n % gz.length)), 'gzip'],
        'flipped-gzip': [Buffer.from(gz.map((b, i) => (i === 10 + (n % (gz.length - 18)) ? b ^ 0xff : b))), 'gzip'],
        'raw-deflate': [deflateRawSync(json), 'deflate'],
        'gzip-as-deflate': [gz, 'deflate'],
        'deflate-as-gzip': [deflateSync(json), 'gzip'],
        'plain-as-gzip': [Buffer.from(json), 'gzip'],
        brotli: [brotliCompressSync(json), 'br'],
        'gzip-of-gzip': [gzipSync(gz), 'gzip'],
        'x-gzip': [gz, 'x-gzip'],
        'gzip,gzip': [gzipSync(gz), 'gzip, gzip'],
        'gzip-trailing-garbage': [Buffer.concat([gz, Buffer.from('garbage')]), 'gzip'],
        'empty-gzip': [gzipSync(''), 'gzip'],
      };
      const [body, encoding] = cases[how] as [Buffer, string];
      const a = await post('/v1/batch', body, { 'content-type': 'application/json', 'content-encoding': encoding, authorization: basic(`${writeKey}:`) });
      noServerError(a, how);
      if (how !== 'gzip-trailing-garbage') expect(a.status, how).toBeGreaterThanOrEqual(400);
      if (a.status === 200) accepted.push(id);
    }),
  );

let bombs: [string, Buffer, string][] = [];
const bombCase = fc.nat().map((n) =>
  asCase(`bomb #${n % 6}`, async () => {
    const [name, body, encoding] = bombs[n % bombs.length] as [string, Buffer, string];
    const a = await post('/v1/batch', body, { 'content-type': 'application/json', 'content-encoding': encoding, authorization: basic(`${writeKey}:`) });
    noServerError(a, name);
    expect(a.status, name).toBe(413);
  }),
);

const authCase = fc
  .constantFrom(
    'Basic', 'Basic ', 'Basic !!!!', basic(':'), basic(''), basic('tl_not-a-real-key-000000000:'), 'Bearer x', `Bearer ${'x'.repeat(40)}`,
    'Basic =====', `Basic ${'A'.repeat(8000)}`, basic('\u0000:'), basic('é:é'), 'Digest username="x"', '', ' ', 'Basic\tabc', 'Negotiate YIIB',
  )
  .map((authorization) =>
    asCase(`auth ${JSON.stringify(authorization.slice(0, 40))}`, async () => {
      const a = await post('/v1/batch', validBatch('auth').json, { 'content-type': 'application/json', ...(authorization === '' ? {} : { authorization }) });
      noServerError(a, 'auth');
      expect(a.status, authorization.slice(0, 40)).toBe(401);
    }),
  );

/** Forms that carry the right key in ways the collector may or may not take: only "no 5xx". */
const authVariantCase = fc
  .constantFrom('lowercase-basic', 'key-with-password', 'key-without-colon', 'padded', 'body-write-key', 'both', 'body-write-key-number', 'body-write-key-huge')
  .map((how) =>
    asCase(`auth variant ${how}`, async () => {
      const id = nextId('auth');
      const msg = { type: 'track', event: 'E', userId: 'u', messageId: id };
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      let body: Record<string, unknown> = { batch: [msg] };
      if (how === 'lowercase-basic') headers['authorization'] = `basic ${Buffer.from(`${writeKey}:`).toString('base64')}`;
      if (how === 'key-with-password') headers['authorization'] = basic(`${writeKey}:secret:more`);
      if (how === 'key-without-colon') headers['authorization'] = basic(writeKey);
      if (how === 'padded') headers['authorization'] = `Basic   ${Buffer.from(` ${writeKey} :`).toString('base64')}  `;
      if (how === 'body-write-key') body = { ...body, writeKey };
      if (how === 'both') {
        headers['authorization'] = basic('tl_not-a-real-key-000000000:');
        body = { ...body, writeKey };
      }
      if (how === 'body-write-key-number') body = { ...body, writeKey: 12345 };
      if (how === 'body-write-key-huge') body = { ...body, writeKey: 'k'.repeat(100_000) };
      const a = await post('/v1/batch', JSON.stringify(body), headers);
      noServerError(a, how);
      if (a.status === 200) accepted.push(id);
    }),
  );

const headerCase = fc
  .constantFrom('huge-user-agent', 'huge-header-total', 'many-headers', 'x-forwarded-for-garbage', 'odd-content-length', 'duplicate-encoding', 'unicode-user-agent', 'expect-continue')
  .map((how) =>
    asCase(`headers ${how}`, async () => {
      const id = nextId('hdr');
      const json = JSON.stringify({ batch: [{ type: 'track', event: 'E', userId: 'u', messageId: id }] });
      const auth = `Authorization: ${basic(`${writeKey}:`)}\r\n`;
      const request = (extra: string, body = json) =>
        `POST /v1/batch HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n${auth}${extra}Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
      const requests: Record<string, string | Buffer> = {
        'huge-user-agent': request(`User-Agent: ${'u'.repeat(12_000)}\r\n`),
        'huge-header-total': request(`X-Pad: ${'p'.repeat(70_000)}\r\n`),
        'many-headers': request(Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')),
        'x-forwarded-for-garbage': request(`X-Forwarded-For: ${'999.999.1.1, '.repeat(200)}\r\n`),
        'odd-content-length': `POST /v1/batch HTTP/1.1\r\nHost: fuzz\r\nContent-Type: application/json\r\n${auth}Content-Length: 5\r\nContent-Length: 6\r\n\r\n${json}`,
        'duplicate-encoding': request('Content-Encoding: gzip\r\nContent-Encoding: gzip\r\n'),
        'unicode-user-agent': Buffer.concat([Buffer.from('POST /v1/batch HTTP/1.1\r\nHost: fuzz\r\nUser-Agent: '), Buffer.from([0xc3, 0xa9, 0xff, 0xfe, 0x80]), Buffer.from(`\r\nContent-Type: application/json\r\n${auth}Content-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`)]),
        'expect-continue': request('Expect: 100-continue\r\n'),
      };
      const status = await raw(requests[how] as string | Buffer);
      noServerError({ status }, how);
      if (status === 200) accepted.push(id);
    }),
  );

const malformedHttpCase = fc
  .constantFrom(
    'POST /v1/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
    'POST /v1/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
    'POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
    'POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}',
    'POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"batch":[',
    'POST /v1/batch HTTP/9.9\r\nHost: x\r\n\r\n',
    'POST /v1/batch\r\n\r\n',
    'POST /v1/batch HTTP/1.1\r\nHost x\r\n\r\n',
    'POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
    `POST /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
    'GARBAGE\r\n\r\n',
    '\u0000\u0001\u0002\r\n\r\n',
    'POST /v1/batch?x=%zz&__proto__[a]=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}',
  )
  .map((request) =>
    asCase(`malformed HTTP ${JSON.stringify(request.slice(0, 50))}`, async () => {
      noServerError({ status: await raw(request) }, 'raw');
    }),
  );

/** Near MAX_REQUEST_BYTES of adversarial URL values: all stored (scrubbed), none blocking the server. */
const bigBatchCase = fc.integer({ min: 0, max: ADVERSARIAL_URLS.length - 1 }).map((k) =>
  asCase(`500 KB of adversarial URLs #${k}`, async () => {
    const url = ADVERSARIAL_URLS[k] as string;
    const batch: { messageId: string }[] = [];
    for (;;) {
      const next = [...batch, { type: 'page', userId: 'u', messageId: nextId('big'), properties: { url, referrer: url.slice(0, 2000) } }];
      if (Buffer.byteLength(JSON.stringify({ batch: next })) > MAX_REQUEST_BYTES - 1024) break;
      batch.push(next[next.length - 1] as { messageId: string });
    }
    const a = await post('/v1/batch', JSON.stringify({ batch }), { 'content-type': 'application/json', authorization: basic(`${writeKey}:`) });
    noServerError(a, 'big batch');
    expect(a.status, JSON.stringify(a.body).slice(0, 300)).toBe(200);
    expect(a.body?.['accepted']).toBe(batch.length);
    accepted.push(...batch.map((m) => m.messageId));
  }),
);

const anyCase = fc.oneof(
  { weight: 10, arbitrary: batchCase },
  { weight: 2, arbitrary: badJsonCase },
  { weight: 1, arbitrary: contentTypeCase },
  { weight: 2, arbitrary: compressedCase },
  { weight: 1, arbitrary: bombCase },
  { weight: 2, arbitrary: authCase },
  { weight: 1, arbitrary: authVariantCase },
  { weight: 1, arbitrary: headerCase },
  { weight: 1, arbitrary: malformedHttpCase },
  { weight: 1, arbitrary: bigBatchCase },
);

async function storedIds(ids: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 500) {
    const rs = await server.clickhouse.query({
      query: 'SELECT event_id FROM events WHERE tenant_id = {tenant:String} AND event_id IN {ids:Array(String)}',
      query_params: { tenant, ids: ids.slice(i, i + 500) },
      format: 'JSONEachRow',
    });
    for (const r of await rs.json<{ event_id: string }>()) found.add(r.event_id);
  }
  return found;
}

describe('collector over HTTP, fuzzed', () => {
  it(`answers hostile requests without a 5xx and stores every accepted message (${RUNS} cases, FUZZ_SEED=${SEED})`, async () => {
    const over = MAX_REQUEST_BYTES + 1;
    bombs = [
      ['gzip just over', gzipSync(Buffer.alloc(over, 0x20)), 'gzip'],
      ['deflate just over', deflateSync(Buffer.alloc(over, 0x20)), 'deflate'],
      ['gzip 30 MB', gzipSync(Buffer.alloc(30 * 1024 * 1024, 0x20)), 'gzip'],
      ['deflate 30 MB', deflateSync(Buffer.alloc(30 * 1024 * 1024, 0x20)), 'deflate'],
      ['gzip of a JSON batch over the limit', gzipSync(JSON.stringify({ batch: [{ type: 'track', event: 'E', userId: 'u', properties: { pad: 'x'.repeat(over) } }] })), 'gzip'],
      ['gzip 30 MB uppercase', gzipSync(Buffer.alloc(30 * 1024 * 1024, 0x20)), 'GZIP'],
    ];
    try {
      await fc.assert(
        fc.asyncProperty(anyCase, async (c) => {
          await c.run();
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      throw new Error(`fuzz-http failed; rerun with FUZZ_SEED=${SEED}\n${(err as Error).message}\ncaused by: ${cause instanceof Error ? cause.message : String(cause)}`);
    }

    // every accepted message reaches ClickHouse (poll: the sink group-commits)
    let missing: string[] = [...accepted];
    const allStored = async () => {
      const found = await storedIds(missing);
      missing = missing.filter((id) => !found.has(id));
      return missing.length === 0;
    };
    await eventually(allStored, 60_000, 'every accepted message stored', 250).catch(() => undefined);
    expect(missing, `accepted but not stored (FUZZ_SEED=${SEED})`).toEqual([]);
    expect(accepted.length, 'the run must accept messages, or it checks nothing').toBeGreaterThan(500);

    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    const after = await post('/v1/batch', JSON.stringify({ batch: [{ type: 'track', event: 'E', userId: 'u', messageId: nextId('after') }] }), {
      'content-type': 'application/json',
      authorization: basic(`${writeKey}:`),
    });
    expect(after.status).toBe(200);
    console.log(`fuzz-http: ${RUNS} cases, seed ${SEED}, ${accepted.length} accepted messages stored; statuses ${JSON.stringify(statusCounts)}`);
  }, 300_000);
});
