import * as kafkajs from 'kafkajs';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../libs/config/env.js';
import { freePort } from '../../test/support/child-process.js';
import {
  defaultClassifiers,
  DependencyError,
  describeStartupError,
  kafkaStartupProblem,
  openWithinStartupTimeout,
  registryStartupProblem,
  StartupTimeoutError,
  using,
} from './startup.js';

// NOTE: the real KafkaJS error classes; their typings lag the runtime (constructor arguments, ConnectionClosedError)
type ErrorClass = new (...args: unknown[]) => Error;
const { KafkaJSConnectionClosedError, KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSSASLAuthenticationError } = kafkajs as unknown as Record<
  'KafkaJSConnectionClosedError' | 'KafkaJSConnectionError' | 'KafkaJSNumberOfRetriesExceeded' | 'KafkaJSProtocolError' | 'KafkaJSSASLAuthenticationError',
  ErrorClass
>;
const tlsError = (code: string) => Object.assign(new Error(`certificate problem quoting nothing`), { code });
/** KafkaJS wraps a socket error in a connection error, then in "retries exceeded" */
const viaKafkaRetries = (cause: Error) => new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError(`Connection error: ${cause.message}`, { code: (cause as { code?: string }).code } as never), { retryCount: 5, retryTime: 2_000 });

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines };
}

describe('start-up problems name the setting to check', () => {
  it.each([
    ['a refused SASL password', new KafkaJSSASLAuthenticationError('SASL SCRAM SHA512 authentication failed: hunter2'), 'KAFKA_SASL_PASSWORD'],
    ['a mechanism the listener lacks', new KafkaJSProtocolError({ message: 'x', type: 'UNSUPPORTED_SASL_MECHANISM', code: 33, retriable: false } as never), 'KAFKA_SASL_MECHANISM'],
    ['an untrusted broker certificate', viaKafkaRetries(tlsError('SELF_SIGNED_CERT_IN_CHAIN')), 'KAFKA_SSL_CA_FILE'],
    ['a certificate of another host', viaKafkaRetries(tlsError('ERR_TLS_CERT_ALTNAME_INVALID')), 'KAFKA_BROKERS'],
    ['a TLS listener reached in plain text', new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionClosedError("Closed connection"), { retryCount: 5, retryTime: 2_000 }), 'KAFKA_SSL'],
  ])('Kafka: %s', (_what, err, setting) => {
    const line = describeStartupError(new DependencyError('kafka', err), defaultClassifiers);
    expect(line).toContain(setting);
    expect(line).not.toContain('hunter2');
  });

  it('Kafka: an unreachable broker, and other dependencies without a classifier, say "not reachable" and the URL setting', () => {
    expect(describeStartupError(new DependencyError('kafka', new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError("ECONNREFUSED"), { retryCount: 5, retryTime: 2_000 })), defaultClassifiers)).toBe(
      'Kafka is not reachable: check KAFKA_BROKERS',
    );
    expect(describeStartupError(new DependencyError('redis', new Error('x')), {})).toContain('REDIS_URL');
    expect(describeStartupError(new DependencyError('clickhouse', new Error('x')), {})).toContain('CLICKHOUSE_URL');
  });

  it('registry: 401/403 name the credentials, TLS the CA file, anything else the URL', () => {
    expect(registryStartupProblem(Object.assign(new Error('Unauthorized'), { status: 401 }))).toContain('SCHEMA_REGISTRY_PASSWORD');
    expect(registryStartupProblem(Object.assign(new Error('Forbidden'), { status: 403 }))).toContain('SCHEMA_REGISTRY_USER');
    expect(registryStartupProblem(new Error('wrapped', { cause: tlsError('UNABLE_TO_VERIFY_LEAF_SIGNATURE') }))).toContain('SCHEMA_REGISTRY_CA_FILE');
    expect(describeStartupError(new DependencyError('registry', new Error('ECONNREFUSED')), defaultClassifiers)).toContain('SCHEMA_REGISTRY_URL');
  });

  it('an error of no known dependency is named by its class, never by its message', () => {
    expect(describeStartupError(new TypeError('user alice@example.com'), defaultClassifiers)).toBe('start-up failed: TypeError');
    expect(kafkaStartupProblem(new Error('plain'))).toBeUndefined();
  });

  it('using() tags a failure with its dependency and lets a ConfigError through untouched', async () => {
    const tagged = await using('redis', () => Promise.reject(new Error('boom'))).catch((e: unknown) => e);
    expect(tagged).toBeInstanceOf(DependencyError);
    expect((tagged as DependencyError).dependency).toBe('redis');
    const config = new ConfigError('KAFKA_SSL_CA_FILE: cannot read /x (ENOENT)');
    await expect(using('kafka', () => Promise.reject(config))).rejects.toBe(config);
  });
});

describe('openWithinStartupTimeout', () => {
  it('cuts off an attempt that hangs at the deadline, naming what it waited for', async () => {
    const { logger } = capturingLogger();
    const started = Date.now();
    const err = await openWithinStartupTimeout({
      service: 'enricher',
      logger,
      timeoutMs: 1_000,
      port: 0,
      host: '127.0.0.1',
      classifiers: defaultClassifiers,
      // a registry that takes the connection and never answers
      open: async (step) => {
        await step('kafka', async () => undefined);
        return step('registry', () => new Promise<never>(() => undefined));
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupTimeoutError);
    expect((err as Error).message).toContain('the schema registry did not answer in time: check SCHEMA_REGISTRY_URL');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(Date.now() - started).toBeLessThan(2_000);
  });


  it('answers every other route 503 + Retry-After while starting (a restarted collector found early), never 404', async () => {
    const port = await freePort();
    const seen: { status: number; retryAfter: string | null; body: unknown }[] = [];
    await openWithinStartupTimeout({
      service: 'collector',
      logger: capturingLogger().logger,
      timeoutMs: 20_000,
      port,
      host: '127.0.0.1',
      classifiers: defaultClassifiers,
      initialDelayMs: 50,
      open: async () => {
        for (const [method, path] of [['POST', '/v1/batch'], ['GET', '/v1/admin/tenants/t']] as const) {
          const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, ...(method === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}) });
          seen.push({ status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() });
        }
        return 'context';
      },
    });
    expect(seen).toEqual([
      { status: 503, retryAfter: '1', body: { success: false, error: 'unavailable', message: 'starting' } },
      { status: 503, retryAfter: '1', body: { success: false, error: 'unavailable', message: 'starting' } },
    ]);
  });

  it('retries until the dependency answers, /readyz 503 meanwhile, one log line per distinct problem, then frees the port', async () => {
    const port = await freePort();
    const { logger, lines } = capturingLogger();
    let attempts = 0;
    const readyz: number[] = [];
    const opened = await openWithinStartupTimeout({
      service: 'enricher',
      logger,
      timeoutMs: 20_000,
      port,
      host: '127.0.0.1',
      classifiers: defaultClassifiers,
      initialDelayMs: 50,
      open: async () => {
        attempts += 1;
        readyz.push((await fetch(`http://127.0.0.1:${port}/readyz`)).status);
        if (attempts <= 3) throw new DependencyError('kafka', new KafkaJSSASLAuthenticationError('refused'));
        return 'context';
      },
    });
    expect(opened).toBe('context');
    expect(attempts).toBe(4);
    expect(readyz).toEqual([503, 503, 503, 503]);
    const notReady = lines.filter((l) => String(l['msg']).startsWith('not ready:'));
    expect(notReady).toHaveLength(1);
    expect(notReady[0]?.['msg']).toContain('KAFKA_SASL_PASSWORD');
    // the service's own server can take the port now
    await expect(fetch(`http://127.0.0.1:${port}/readyz`)).rejects.toThrow();
  });

  it('gives up at the deadline with the last problem, and never retries a bad setting', async () => {
    const { logger } = capturingLogger();
    const started = Date.now();
    const err = await openWithinStartupTimeout({
      service: 'sink',
      logger,
      timeoutMs: 1_000,
      port: 0,
      host: '127.0.0.1',
      classifiers: defaultClassifiers,
      initialDelayMs: 50,
      open: () => Promise.reject(new DependencyError('registry', Object.assign(new Error('Unauthorized'), { status: 401 }))),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartupTimeoutError);
    expect((err as Error).message).toMatch(/^not started within STARTUP_TIMEOUT_MS \(1000 ms\): .*SCHEMA_REGISTRY_PASSWORD/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
    expect(Date.now() - started).toBeLessThan(2_500);

    let calls = 0;
    const bad = new ConfigError('KAFKA_SSL_CA_FILE: cannot read /nope (ENOENT)');
    await expect(
      openWithinStartupTimeout({ service: 'sink', logger, timeoutMs: 10_000, port: 0, host: '127.0.0.1', classifiers: {}, open: () => (calls++, Promise.reject(bad)) }),
    ).rejects.toBe(bad);
    expect(calls).toBe(1);
  });
});
