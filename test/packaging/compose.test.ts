// Acceptance check 3 of the packaging issue: docker-compose.yml validates with docker-compose
// (no Docker engine needed), and every service the code has runs there with a healthcheck,
// a restart policy and a configuration its zod schema accepts.
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { composePublishedPort, type ComposePort, configSchemaOf, fleetServices, isPinnedImage, lazyRender, runTool, SECRET_PLACEHOLDER } from './packaging-support.js';

// NOTE: the resolved compose file is walked untyped (`any`): the assertions are its type check.
type Any = any;

const COMPOSE = ['-f', 'docker-compose.yml'];
const BACKENDS = ['kafka', 'schema-registry', 'redis', 'clickhouse'];
const JOBS = ['topics', 'migrate'];
// what a user exports before `docker compose up` (the file has no default for secrets)
const userEnv = { ...process.env, TRACKLANE_ADMIN_TOKEN: SECRET_PLACEHOLDER, TRACKLANE_MASTER_KEY: SECRET_PLACEHOLDER, TRACKLANE_ID_HASH_KEY: SECRET_PLACEHOLDER };

describe('docker-compose.yml', () => {
  const resolved = lazyRender(() => parse(runTool('docker-compose', [...COMPOSE, 'config'], userEnv).stdout) as { services: Record<string, Any> });
  const services = () => resolved().services;

  it('passes `docker-compose config -q`, with and without the secrets exported', () => {
    runTool('docker-compose', [...COMPOSE, 'config', '-q'], userEnv);
    const bare = { ...process.env };
    delete bare.TRACKLANE_ADMIN_TOKEN;
    delete bare.TRACKLANE_MASTER_KEY;
    delete bare.TRACKLANE_ID_HASH_KEY;
    runTool('docker-compose', [...COMPOSE, 'config', '-q'], bare);
  });

  it('runs every fleet service the code has, as `tracklane start <service>`', () => {
    expect(fleetServices().length).toBe(5);
    for (const s of fleetServices()) {
      expect(services()[s], s).toBeDefined();
      expect(services()[s].command).toEqual(['start', s]);
    }
  });

  it.each([...fleetServices(), ...BACKENDS])('%s has a healthcheck and a restart policy', (name) => {
    const svc = services()[name];
    expect(svc, name).toBeDefined();
    expect(svc.healthcheck?.disable ?? false).toBe(false);
    expect(Array.isArray(svc.healthcheck?.test) && svc.healthcheck.test.length > 1).toBe(true);
    expect(['always', 'unless-stopped', 'on-failure']).toContain(svc.restart);
  });

  it('fleet healthchecks ask the service itself on /healthz of its PORT', () => {
    for (const s of fleetServices()) {
      const test = services()[s].healthcheck.test.join(' ');
      expect(test).toContain(`127.0.0.1:${services()[s].environment.PORT}/healthz`);
    }
  });

  it('the one-shot jobs run `topics` and `migrate`, and the fleet waits for them and the backends', () => {
    expect(services().topics.command).toEqual(['topics']);
    expect(services().migrate.command).toEqual(['migrate']);
    for (const j of JOBS) expect(services()[j].restart).toBe('on-failure');
    for (const s of fleetServices()) {
      const deps = services()[s].depends_on;
      for (const j of JOBS) expect(deps[j]?.condition, `${s} after ${j}`).toBe('service_completed_successfully');
      for (const b of ['schema-registry', 'redis']) expect(deps[b]?.condition, `${s} after ${b}`).toBe('service_healthy');
    }
    expect(services().topics.depends_on.kafka.condition).toBe('service_healthy');
    expect(services().migrate.depends_on.clickhouse.condition).toBe('service_healthy');
  });

  it('backends: Kafka 3.9 (KRaft, one node), Confluent Schema Registry, Redis 7, ClickHouse ≥ 24.8 — images pinned', () => {
    expect(services().kafka.image).toMatch(/^apache\/kafka:3\.9\.\d+$/);
    expect(services().kafka.environment.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(services()['schema-registry'].image).toMatch(/^confluentinc\/cp-schema-registry:7\.\d+\.\d+$/);
    expect(services().redis.image).toMatch(/^redis:7\.\d+\.\d+/);
    const ch = /^clickhouse\/clickhouse-server:(\d+)\.(\d+)\.\d+/.exec(services().clickhouse.image);
    expect(ch).not.toBeNull();
    expect(Number(ch?.[1]) * 100 + Number(ch?.[2])).toBeGreaterThanOrEqual(2408);
    for (const [name, svc] of Object.entries(services())) expect(isPinnedImage(svc.image), `${name}: ${svc.image}`).toBe(true);
  });

  it('every Tracklane container gets a configuration its zod schema accepts', async () => {
    for (const name of [...fleetServices(), ...JOBS]) {
      const svc = services()[name];
      const command = svc.command[0] === 'start' ? svc.command[1] : svc.command[0];
      const r = (await configSchemaOf(command)).safeParse(svc.environment);
      expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`), name).toEqual([]);
      // the migrate job applies the migrations; the services never race it
      expect(svc.environment.MIGRATE_ON_START, name).toBe('false');
      // ClickHouse is a server here: the image has no chDB
      expect(svc.environment.CLICKHOUSE_URL, name).toBe('http://clickhouse:8123');
    }
  });

  it('Tracklane containers run hardened: read-only root filesystem, no capabilities, no new privileges', () => {
    for (const name of [...fleetServices(), ...JOBS]) {
      const svc = services()[name];
      expect(svc.read_only, name).toBe(true);
      expect(svc.cap_drop, name).toContain('ALL');
      expect(svc.security_opt, name).toContain('no-new-privileges:true');
    }
  });

  it('secrets come from the user environment, not from the file', () => {
    const raw = runTool('docker-compose', [...COMPOSE, 'config'], {
      ...userEnv,
      TRACKLANE_ADMIN_TOKEN: 'admin-token-from-env',
      TRACKLANE_MASTER_KEY: 'master-key-from-env',
      TRACKLANE_ID_HASH_KEY: 'id-hash-key-from-env',
    }).stdout;
    const s = (parse(raw) as { services: Record<string, Any> }).services;
    expect(s.collector.environment.TRACKLANE_ADMIN_TOKEN).toBe('admin-token-from-env');
    expect(s.anonymizer.environment.TRACKLANE_MASTER_KEY).toBe('master-key-from-env');
    expect(s.compactor.environment.TRACKLANE_MASTER_KEY).toBe('master-key-from-env');
    for (const name of ['collector', 'sink', 'compactor']) expect(s[name].environment.TRACKLANE_ID_HASH_KEY, name).toBe('id-hash-key-from-env');
  });

  it('only the collector (8080; its admin port on loopback) and ClickHouse (loopback) publish ports', () => {
    const published = Object.entries(services()).flatMap(([name, svc]) =>
      (svc.ports ?? []).map((p: Any) => {
        const { hostIp, published: port } = composePublishedPort(p);
        return `${name}:${hostIp}:${port}`;
      }),
    );
    expect(published.sort()).toEqual(['clickhouse:127.0.0.1:8123', 'collector:127.0.0.1:8090', 'collector::8080']);
  });

  it('the collector serves the operator API on ADMIN_PORT, published on the loopback only (DESIGN.md §8)', () => {
    const { environment: env, ports } = services().collector;
    expect(env.ADMIN_PORT).toMatch(/^\d+$/);
    expect(env.ADMIN_PORT).not.toBe(env.PORT);
    const all = (ports as Any[]).map(composePublishedPort);
    const admin = all.filter((p) => p.target === Number(env.ADMIN_PORT));
    expect(admin.length).toBeGreaterThan(0);
    for (const p of admin) expect(['127.0.0.1', '::1'], JSON.stringify(p)).toContain(p.hostIp);
    expect(all.filter((p) => p.target === Number(env.PORT))).toEqual([{ hostIp: '', published: 8080, target: 8080, protocol: 'tcp' }]);
  });

  // docker-compose v1 keeps "ip:published:target" strings, Compose v2 prints the long form
  it.each<[string, unknown, ComposePort | null]>([
    ['loopback string', '127.0.0.1:8090:8090', { hostIp: '127.0.0.1', published: 8090, target: 8090, protocol: 'tcp' }],
    ['loopback string with protocol', '127.0.0.1:8090:8090/tcp', { hostIp: '127.0.0.1', published: 8090, target: 8090, protocol: 'tcp' }],
    ['IPv6 loopback string', '[::1]:8090:8090', { hostIp: '::1', published: 8090, target: 8090, protocol: 'tcp' }],
    ['every interface, string', '8090:8090', { hostIp: '', published: 8090, target: 8090, protocol: 'tcp' }],
    ['every interface, explicit', '0.0.0.0:8090:8090/udp', { hostIp: '0.0.0.0', published: 8090, target: 8090, protocol: 'udp' }],
    ['target only (a random host port on every interface)', '8090', { hostIp: '', published: 0, target: 8090, protocol: 'tcp' }],
    ['long form', { host_ip: '127.0.0.1', published: '8090', target: 8090 }, { hostIp: '127.0.0.1', published: 8090, target: 8090, protocol: 'tcp' }],
    ['long form, every interface', { published: 8080, target: 8080, protocol: 'tcp' }, { hostIp: '', published: 8080, target: 8080, protocol: 'tcp' }],
    ['a port range is not read (it would hide a target)', '8000-8100:8000-8100', null],
  ])('a published port reads back the same from either compose: %s', (_case, port, expected) => {
    if (expected) expect(composePublishedPort(port)).toEqual(expected);
    else expect(() => composePublishedPort(port)).toThrow(/unexpected compose port/);
  });
});
