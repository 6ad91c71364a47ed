// Acceptance checks 1 and 2 of the packaging issue: `kubectl kustomize` renders both overlays,
// every object validates against its schema, and the rendered fleet matches what the code
// does (services, topics, consumer groups, partitions, config) and the production rules
// (probes, resources, security context, pinned images, secrets only referenced).
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { kafkaSecurityProblems, kafkaSecurityShape } from '../../libs/kafka/kafka-security.js';
import { registryProblems, schemaRegistryShape } from '../../libs/kafka/registry-client.js';
import { groupId } from '../../services/fleet/fleet-config.js';
import { topicNames } from '../../libs/kafka/topics.js';
import {
  codeConsumers,
  configSchemaOf,
  fleetServices,
  isPinnedImage,
  lazyRender,
  modelFor,
  renderOverlay,
  SECRET_PLACEHOLDER,
  type K8sObject,
} from './packaging-support.js';
import { selectorMatches } from './service-routes.js';

const SECRET_KEYS = ['TRACKLANE_MASTER_KEY', 'TRACKLANE_ADMIN_TOKEN', 'TRACKLANE_ID_HASH_KEY', 'CLICKHOUSE_PASSWORD'];
const WORKLOAD_KINDS = ['Deployment', 'Job'];
// NOTE: rendered YAML is walked untyped (`any`): the assertions are its type check.
type Any = any;

describe.each(['dev', 'prod'])('k8s/overlays/%s', (overlay) => {
  const objects = lazyRender(() => renderOverlay(overlay));
  const all = (kind: string): K8sObject[] => objects().filter((o) => o.kind === kind);
  const one = (kind: string, name: string): K8sObject => {
    const found = objects().find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`${overlay}: no ${kind} ${name}`);
    return found;
  };
  const config = (): Record<string, string> => one('ConfigMap', 'tracklane-config').data as Record<string, string>;
  const containersOf = (o: K8sObject): Any[] => o.spec.template.spec.containers;
  const workloads = (): K8sObject[] => objects().filter((o) => WORKLOAD_KINDS.includes(o.kind));
  const deploymentOf = (service: string): K8sObject => one('Deployment', service);
  const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined) =>
    Object.entries(selector).every(([k, v]) => labels?.[k] === v);

  it('renders with kubectl kustomize', () => {
    expect(objects().length).toBeGreaterThan(20);
  });

  it('every rendered object validates against its Kubernetes / KEDA / Prometheus Operator schema', async () => {
    const failures: string[] = [];
    for (const o of objects()) {
      const Model = await modelFor(o.apiVersion, o.kind);
      try {
        new Model(o).validate();
      } catch (err) {
        failures.push(`${o.kind}/${o.metadata.name}: ${(err as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  // NOTE: the kubernetes-models schemas accept unknown properties, and a strict API server
  // (kubectl's default field validation) refuses them: e.g. an `env` nested in `envFrom`.
  it('containers carry only fields the Kubernetes API knows', () => {
    const CONTAINER = new Set(['name', 'image', 'imagePullPolicy', 'command', 'args', 'env', 'envFrom', 'ports', 'resources', 'securityContext', 'volumeMounts',
      'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'workingDir', 'terminationMessagePolicy', 'terminationMessagePath']);
    const ENV_FROM = new Set(['configMapRef', 'secretRef', 'prefix']);
    const ENV = new Set(['name', 'value', 'valueFrom']);
    const unknown = (o: object, known: Set<string>) => Object.keys(o).filter((k) => !known.has(k));
    for (const w of workloads()) {
      const pod = w.spec.template.spec;
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const where = `${w.metadata.name}/${c.name}`;
        expect(unknown(c, CONTAINER), where).toEqual([]);
        for (const e of c.envFrom ?? []) expect(unknown(e, ENV_FROM), `${where} envFrom`).toEqual([]);
        for (const e of c.env ?? []) expect(unknown(e, ENV), `${where} env`).toEqual([]);
      }
    }
  });

  it('every namespaced object lands in the tracklane namespace', () => {
    for (const o of objects().filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('tracklane');
  });

  it('has a Deployment per fleet service, each running `tracklane start <service>`', () => {
    expect(fleetServices()).toEqual(['anonymizer', 'collector', 'compactor', 'enricher', 'sink']);
    for (const s of fleetServices()) expect(containersOf(deploymentOf(s))[0].args).toEqual(['start', s]);
  });

  it('every Deployment container has startup, liveness (/healthz) and readiness (/readyz) probes', () => {
    for (const d of all('Deployment')) {
      for (const c of containersOf(d)) {
        const where = `${d.metadata.name}/${c.name}`;
        expect(c.livenessProbe?.httpGet?.path, where).toBe('/healthz');
        expect(c.readinessProbe?.httpGet?.path, where).toBe('/readyz');
        expect(c.startupProbe?.httpGet?.path, where).toBe('/healthz');
        for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) {
          expect(c.ports.map((x: Any) => x.name), where).toContain(p.httpGet.port);
        }
      }
    }
  });

  it('every container (Deployments and Jobs) has cpu and memory requests and limits, requests ≤ limits', () => {
    const UNITS: Record<string, number> = { '': 1, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, m: 1e-3 };
    const quantity = (q: string | number): number => {
      const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|m)?$/.exec(String(q));
      if (!m) throw new Error(`unexpected quantity ${q}`);
      return Number(m[1]) * (UNITS[m[2] ?? ''] as number);
    };
    const [cpu, mem] = [quantity, quantity];
    for (const w of workloads()) {
      for (const c of containersOf(w)) {
        const where = `${w.kind}/${w.metadata.name}/${c.name}`;
        const { requests, limits } = c.resources ?? {};
        for (const k of ['cpu', 'memory']) {
          expect(requests?.[k], `${where} requests.${k}`).toBeDefined();
          expect(limits?.[k], `${where} limits.${k}`).toBeDefined();
        }
        expect(cpu(requests.cpu), where).toBeLessThanOrEqual(cpu(limits.cpu));
        expect(mem(requests.memory), where).toBeLessThanOrEqual(mem(limits.memory));
      }
    }
  });

  it('every pod runs non-root, read-only root filesystem, no privilege escalation, all capabilities dropped, RuntimeDefault seccomp', () => {
    for (const w of workloads()) {
      const pod = w.spec.template.spec;
      expect(pod.securityContext?.runAsNonRoot, w.metadata.name).toBe(true);
      expect(pod.securityContext?.runAsUser, w.metadata.name).toBeGreaterThan(0);
      expect(pod.securityContext?.seccompProfile?.type, w.metadata.name).toBe('RuntimeDefault');
      expect(pod.automountServiceAccountToken, w.metadata.name).toBe(false);
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
        const sc = c.securityContext ?? {};
        const where = `${w.metadata.name}/${c.name}`;
        expect(sc.allowPrivilegeEscalation, where).toBe(false);
        expect(sc.readOnlyRootFilesystem, where).toBe(true);
        expect(sc.runAsNonRoot ?? pod.securityContext.runAsNonRoot, where).toBe(true);
        expect(sc.privileged ?? false, where).toBe(false);
        expect(sc.capabilities?.drop, where).toContain('ALL');
        expect(sc.capabilities?.add ?? [], where).toEqual([]);
      }
    }
  });

  it('every Deployment spreads over zones and nodes', () => {
    for (const d of all('Deployment')) {
      const keys = (d.spec.template.spec.topologySpreadConstraints ?? []).map((t: Any) => t.topologyKey);
      expect(keys, d.metadata.name).toEqual(expect.arrayContaining(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']));
      for (const t of d.spec.template.spec.topologySpreadConstraints) expect(matches(t.labelSelector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
    }
  });

  it('terminationGracePeriodSeconds exceeds the drain time (preStop + SHUTDOWN_TIMEOUT_MS)', () => {
    for (const d of all('Deployment')) {
      const c = containersOf(d)[0];
      const own = (c.env ?? []).find((e: Any) => e.name === 'SHUTDOWN_TIMEOUT_MS')?.value;
      const drainS = Number(own ?? config().SHUTDOWN_TIMEOUT_MS) / 1000;
      const preStop = c.lifecycle?.preStop?.exec?.command;
      const preStopS = preStop?.[0] === 'sleep' ? Number(preStop[1]) : 0;
      expect(Number.isFinite(drainS) && drainS > 0, d.metadata.name).toBe(true);
      expect(d.spec.template.spec.terminationGracePeriodSeconds, d.metadata.name).toBeGreaterThan(drainS + preStopS);
    }
  });

  it('every image is pinned to a version tag or digest', () => {
    const images = workloads().flatMap((w) => containersOf(w).map((c: Any) => c.image as string));
    expect(images.length).toBeGreaterThanOrEqual(7);
    for (const image of images) expect(isPinnedImage(image), image).toBe(true);
  });

  it('secrets are only referenced: no Secret with a value, no secret in the ConfigMap or a literal env', () => {
    for (const s of all('Secret')) {
      expect(s.data ?? {}, s.metadata.name).toEqual({});
      expect(s.stringData ?? {}, s.metadata.name).toEqual({});
    }
    for (const cm of all('ConfigMap')) for (const k of SECRET_KEYS) expect(Object.keys(cm.data ?? {})).not.toContain(k);
    for (const w of workloads()) {
      for (const c of containersOf(w)) {
        for (const e of c.env ?? []) {
          if (SECRET_KEYS.includes(e.name) || /PASSWORD|SECRET|TOKEN|_KEY$/.test(e.name)) {
            expect(e.value, `${w.metadata.name}: ${e.name} must come from a Secret`).toBeUndefined();
            // NOTE: a workload's own Kafka/Redis login lives in a Secret of its own: no pod can read another's
            expect(['tracklane-secrets', `tracklane-${w.metadata.name}-credentials`], `${w.metadata.name}: ${e.name}`).toContain(e.valueFrom?.secretKeyRef?.name);
            expect(e.valueFrom.secretKeyRef.key).toBe(e.name);
          }
        }
        expect(c.envFrom?.some((f: Any) => f.secretRef), `${w.metadata.name}: no whole-Secret envFrom`).toBeFalsy();
      }
    }
  });

  it('collector, sink and compactor get the id hash key from the Secret (they refuse to start without it)', () => {
    for (const service of ['collector', 'sink', 'compactor']) {
      const w = workloads().find((x) => x.kind === 'Deployment' && x.metadata.name === service);
      if (!w) throw new Error(`no Deployment ${service}`);
      const env = containersOf(w).flatMap((c: Any) => c.env ?? []);
      expect(env.find((e: Any) => e.name === 'TRACKLANE_ID_HASH_KEY')?.valueFrom?.secretKeyRef, service).toEqual({ name: 'tracklane-secrets', key: 'TRACKLANE_ID_HASH_KEY' });
    }
  });

  it('every entry point gets a complete configuration (its zod schema parses ConfigMap + env + secret refs)', async () => {
    for (const w of workloads()) {
      for (const c of containersOf(w)) {
        const args: string[] = c.args;
        const command = args[0] === 'start' ? (args[1] as string) : (args[0] as string);
        const env: Record<string, string> = {};
        for (const f of c.envFrom ?? []) Object.assign(env, one('ConfigMap', f.configMapRef.name).data);
        for (const e of c.env ?? []) env[e.name] = e.valueFrom?.secretKeyRef ? SECRET_PLACEHOLDER : e.value;
        const r = (await configSchemaOf(command)).safeParse(env);
        expect(r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`), `${w.kind}/${w.metadata.name}`).toEqual([]);
      }
    }
  });

  it('every consumer gets TOPIC_PREFIX and KAFKA_PARTITIONS from the ConfigMap, never an override', () => {
    expect(config().TOPIC_PREFIX).toBeDefined();
    expect(Number(config().KAFKA_PARTITIONS)).toBeGreaterThanOrEqual(1);
    for (const service of new Set(codeConsumers().map((c) => c.service))) {
      const c = containersOf(deploymentOf(service))[0];
      expect(c.envFrom.map((f: Any) => f.configMapRef?.name)).toContain('tracklane-config');
      for (const e of c.env ?? []) expect(['TOPIC_PREFIX', 'KAFKA_PARTITIONS', 'KAFKA_BROKERS']).not.toContain(e.name);
    }
  });

  it('the KEDA ScaledObjects name exactly the topics and consumer groups the code uses', () => {
    const prefix = config().TOPIC_PREFIX ?? '';
    const topics = topicNames(prefix);
    const consumers = codeConsumers();
    // the sink has two consumers (events and dead letters); the compactor is not autoscaled
    expect(consumers.map((c) => `${c.service}:${c.group}:${c.topic}`).sort()).toEqual([
      'anonymizer:anonymizer:enriched',
      'compactor:compactor:overwrites',
      'enricher:enricher:raw',
      'sink:sink-dlq:dlq',
      'sink:sink:clean',
    ]);
    const triggers = all('ScaledObject').flatMap((so) =>
      so.spec.triggers.map((t: Any) => `${so.spec.scaleTargetRef.name}:${t.type}:${t.metadata.consumerGroup}:${t.metadata.topic}`),
    );
    const expected = consumers
      .filter((c) => c.service !== 'compactor')
      .map((c) => `${c.service}:kafka:${groupId({ TOPIC_PREFIX: prefix }, c.group)}:${topics[c.topic]}`);
    expect(triggers.sort()).toEqual(expected.sort());
    for (const so of all('ScaledObject')) {
      for (const t of so.spec.triggers) {
        expect(t.metadata.bootstrapServersFromEnv ?? t.metadata.bootstrapServers).toBeDefined();
        if (t.metadata.bootstrapServersFromEnv) expect(Object.keys(config())).toContain(t.metadata.bootstrapServersFromEnv);
        expect(Number(t.metadata.lagThreshold)).toBeGreaterThan(0);
      }
    }
  });

  it('no ScaledObject scales a consumer past the partitions of its topic', () => {
    const topics = topicNames(config().TOPIC_PREFIX ?? '');
    const partitionsOf = (topic: string) => (topic === topics.overwrites ? 1 : Number(config().KAFKA_PARTITIONS));
    expect(all('ScaledObject').length).toBe(3);
    for (const so of all('ScaledObject')) {
      const max = so.spec.maxReplicaCount as number;
      expect(max, so.metadata.name).toBeGreaterThanOrEqual(so.spec.minReplicaCount ?? 0);
      for (const t of so.spec.triggers) expect(max, `${so.metadata.name} on ${t.metadata.topic}`).toBeLessThanOrEqual(partitionsOf(t.metadata.topic));
      expect(deploymentOf(so.spec.scaleTargetRef.name).spec.replicas, 'KEDA owns the replica count').toBeUndefined();
    }
  });

  it('enricher, anonymizer and sink: a ScaledObject and a PodDisruptionBudget each', () => {
    for (const s of ['enricher', 'anonymizer', 'sink']) {
      expect(one('ScaledObject', s).spec.scaleTargetRef.name).toBe(s);
      const pdb = one('PodDisruptionBudget', s);
      expect(matches(pdb.spec.selector.matchLabels, deploymentOf(s).spec.template.metadata.labels)).toBe(true);
    }
  });

  it('collector: Service, Ingress, CPU HorizontalPodAutoscaler and PodDisruptionBudget', () => {
    const pods = deploymentOf('collector').spec.template.metadata.labels;
    const svc = one('Service', 'collector');
    expect(matches(svc.spec.selector, pods)).toBe(true);
    const ingress = one('Ingress', 'collector');
    for (const rule of ingress.spec.rules) {
      for (const p of rule.http.paths) {
        expect(p.backend.service.name).toBe('collector');
        expect(svc.spec.ports.map((x: Any) => x.name)).toContain(p.backend.service.port.name);
      }
      expect(rule.http.paths.map((p: Any) => p.path)).not.toContain('/metrics');
    }
    const hpa = one('HorizontalPodAutoscaler', 'collector');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'collector' });
    expect(hpa.spec.metrics.map((m: Any) => m.resource?.name)).toContain('cpu');
    expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
    expect(deploymentOf('collector').spec.replicas, 'the HPA owns the replica count').toBeUndefined();
    expect(matches(one('PodDisruptionBudget', 'collector').spec.selector.matchLabels, pods)).toBe(true);
  });

  it('compactor: one active instance — its topic has one partition, at most one standby, never autoscaled', () => {
    const compactor = codeConsumers().find((c) => c.service === 'compactor');
    expect(compactor?.topic).toBe('overwrites');
    const replicas = deploymentOf('compactor').spec.replicas;
    expect(replicas).toBeGreaterThanOrEqual(1);
    expect(replicas).toBeLessThanOrEqual(2);
    expect(all('ScaledObject').some((so) => so.spec.scaleTargetRef.name === 'compactor')).toBe(false);
    expect(all('HorizontalPodAutoscaler').some((h) => h.spec.scaleTargetRef.name === 'compactor')).toBe(false);
  });

  it('migrate and topics run as Jobs of the same image', () => {
    expect(containersOf(one('Job', 'migrate'))[0].args).toEqual(['migrate']);
    expect(containersOf(one('Job', 'topics'))[0].args).toEqual(['topics']);
    const image = containersOf(deploymentOf('sink'))[0].image;
    for (const j of all('Job')) expect(containersOf(j)[0].image).toBe(image);
    // the Job applies the migrations: replicas must not race it
    expect(config().MIGRATE_ON_START).toBe('false');
    // a ClickHouse server over HTTP: without a URL `migrate` would look for chDB, which the image leaves out
    expect(config().CLICKHOUSE_URL).toMatch(/^https?:\/\//);
  });

  it("NetworkPolicies: default deny; workers reach only DNS, Kafka, the registry, Redis, ClickHouse and the collector the compactor's port", () => {
    const deny = one('NetworkPolicy', 'default-deny');
    expect(deny.spec.podSelector).toEqual({});
    expect(deny.spec.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
    // NOTE: the admin clients' egress to the collector's admin port applies to no workload here (admin-api.test.ts)
    const podLabels = workloads().map((w) => w.spec.template.metadata.labels);
    const egressPorts = all('NetworkPolicy')
      .filter((p) => podLabels.some((labels) => selectorMatches(p.spec.podSelector, labels)))
      .flatMap((p) => p.spec.egress ?? [])
      .flatMap((r: Any) => (r.ports ?? []).map((x: Any) => x.port))
      .sort((a: number, b: number) => a - b);
    expect([...new Set(egressPorts)]).toEqual([53, 6379, 8080, 8081, 8123, 8443, 9092, 9093]);
    // NOTE: 8080 within the namespace is the collector's forward of subject access exports to the compactor, and only that
    const toPods = all('NetworkPolicy').flatMap((p) => (p.spec.egress ?? []).filter((r: Any) => r.ports?.some((x: Any) => x.port === 8080)).map((r: Any) => [p.spec.podSelector, r.to]));
    expect(toPods).toEqual([
      [
        { matchLabels: { 'app.kubernetes.io/name': 'tracklane', 'app.kubernetes.io/component': 'collector' } },
        [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'tracklane', 'app.kubernetes.io/component': 'compactor' } } }],
      ],
    ]);
    for (const p of all('NetworkPolicy')) for (const r of p.spec.egress ?? []) expect(r.to?.length, `${p.metadata.name}: egress without a peer`).toBeGreaterThan(0);
  });

  it('a ServiceMonitor scrapes every service on its http port; dashboards and alert rules ship', () => {
    const sm = one('ServiceMonitor', 'tracklane');
    const scraped = all('Service').filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
    expect(scraped.map((s) => s.metadata.name).sort()).toEqual(fleetServices());
    for (const s of scraped) {
      expect(s.spec.ports.map((p: Any) => p.name)).toContain(sm.spec.endpoints[0].port);
      expect(matches(s.spec.selector, deploymentOf(s.metadata.name).spec.template.metadata.labels)).toBe(true);
    }
    expect(one('PrometheusRule', 'tracklane').spec.groups.length).toBeGreaterThan(0);
    expect(one('ConfigMap', 'tracklane-grafana-dashboard').metadata.labels?.grafana_dashboard).toBe('1');
  });
});

describe('k8s/overlays/prod: credentials and TLS (issue 12)', () => {
  const objects = lazyRender(() => renderOverlay('prod'));
  const one = (kind: string, name: string): K8sObject => {
    const found = objects().find((o) => o.kind === kind && o.metadata.name === name);
    if (!found) throw new Error(`prod: no ${kind} ${name}`);
    return found;
  };
  const containersOf = (o: K8sObject): Any[] => o.spec.template.spec.containers;
  const workloads = (): K8sObject[] => objects().filter((o) => WORKLOAD_KINDS.includes(o.kind));

  it('every connection of every workload is TLS-verified and authenticated, secrets from Secrets, CAs from the mounted tracklane-tls', () => {
    const needs: Record<string, string[]> = {
      collector: ['kafka', 'registry', 'redis', 'clickhouse'],
      enricher: ['kafka', 'registry', 'redis'],
      anonymizer: ['kafka', 'registry', 'redis'],
      sink: ['kafka', 'registry', 'redis', 'clickhouse'],
      compactor: ['kafka', 'registry', 'redis', 'clickhouse'],
      topics: ['kafka'],
      migrate: ['clickhouse'],
    };
    expect(workloads().map((w) => w.metadata.name).sort()).toEqual(Object.keys(needs).sort());
    for (const w of workloads()) {
      const name = w.metadata.name as string;
      const c = containersOf(w)[0];
      const env: Record<string, string> = {};
      const fromSecret = new Map<string, Any>();
      for (const f of c.envFrom ?? []) Object.assign(env, one('ConfigMap', f.configMapRef.name).data);
      for (const e of c.env ?? []) {
        if (e.valueFrom?.secretKeyRef) fromSecret.set(e.name, e.valueFrom.secretKeyRef);
        else env[e.name] = e.value;
      }
      const required = (key: string) => {
        const ref = fromSecret.get(key);
        expect(ref, `${name}: ${key} from a Secret`).toBeDefined();
        expect(ref.optional, `${name}: ${key} is required, not optional`).toBe(false);
      };
      const tlsVolume = w.spec.template.spec.volumes.find((v: Any) => v.secret?.secretName === 'tracklane-tls');
      const caDir = c.volumeMounts.find((m: Any) => m.name === tlsVolume?.name)?.mountPath as string;
      expect(caDir, `${name}: tracklane-tls mounted`).toBeDefined();
      const caFile = (key: string) => expect(env[key]?.startsWith(`${caDir}/`), `${name}: ${key} under ${caDir}`).toBe(true);
      const withSecrets = { ...env, ...Object.fromEntries([...fromSecret.keys()].map((k) => [k, SECRET_PLACEHOLDER])) };
      if (needs[name]?.includes('kafka')) {
        // the code's own coherence rules accept the combination (no missing half, no clash)
        expect(kafkaSecurityProblems(z.object(kafkaSecurityShape).parse(withSecrets)), name).toEqual([]);
        expect(env.KAFKA_SSL, name).toBe('true');
        caFile('KAFKA_SSL_CA_FILE');
        expect(env.KAFKA_SASL_MECHANISM, name).toMatch(/^scram-sha-(256|512)$/);
        expect(env.KAFKA_SASL_USERNAME, name).toBe(`tracklane-${name}`);
        required('KAFKA_SASL_PASSWORD');
        expect(fromSecret.get('KAFKA_SASL_PASSWORD').name).toBe(`tracklane-${name}-credentials`);
      }
      if (needs[name]?.includes('registry')) {
        expect(registryProblems(z.object(schemaRegistryShape).parse(withSecrets)), name).toEqual([]);
        expect(env.SCHEMA_REGISTRY_URL, name).toMatch(/^https:\/\//);
        caFile('SCHEMA_REGISTRY_CA_FILE');
        expect(env.SCHEMA_REGISTRY_USER, name).toBeTruthy();
        required('SCHEMA_REGISTRY_PASSWORD');
      }
      if (needs[name]?.includes('redis')) {
        expect(env.REDIS_URL, name).toMatch(/^rediss:\/\//);
        caFile('REDIS_TLS_CA_FILE');
        expect(env.REDIS_USERNAME, name).toBe(`tracklane-${name}`);
        required('REDIS_PASSWORD');
        expect(fromSecret.get('REDIS_PASSWORD').name).toBe(`tracklane-${name}-credentials`);
      }
      if (needs[name]?.includes('clickhouse')) {
        expect(env.CLICKHOUSE_URL, name).toMatch(/^https:\/\//);
        caFile('CLICKHOUSE_CA_FILE');
        required('CLICKHOUSE_PASSWORD');
      }
    }
  });

});
