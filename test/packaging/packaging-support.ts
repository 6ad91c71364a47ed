// Shared by the packaging tests: renders the kustomize overlays and the compose file with the
// real tools (kubectl, docker-compose; no cluster or Docker engine needed), validates objects
// against their Kubernetes/CRD schemas, and reads what the code says (services, topics,
// consumer groups, config schemas) so the manifests are checked against it.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import type { z } from 'zod';

export const ROOT = resolve(fileURLToPath(new URL('../../', import.meta.url)));

// NOTE: rendered YAML is walked untyped (`any`, unlike the rest of the code): the assertions are its type check.
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

const INSTALL_HINT = 'run scripts/ci/install-test-tools.sh (Debian: apt-get install -y kubernetes-client docker-compose)';

/** Runs a packaging tool; a missing binary is an error that says how to install it (never a skip). */
export function runTool(bin: string, args: string[], env: NodeJS.ProcessEnv = process.env): { stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { cwd: ROOT, encoding: 'utf8', env, maxBuffer: 64 * 1024 * 1024 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error(`${bin} is not installed: ${INSTALL_HINT}`);
  }
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** kubectl to use: $KUBECTL (e.g. to check another kustomize version) or kubectl on PATH. */
export const kubectlBin = (): string => process.env.KUBECTL ?? 'kubectl';

export function renderOverlay(overlay: string): K8sObject[] {
  return renderKustomization(join('k8s', 'overlays', overlay));
}

/** Renders any kustomization directory under the repo root (e.g. k8s/base, which is never applied alone). */
export function renderKustomization(dir: string): K8sObject[] {
  const { stdout } = runTool(kubectlBin(), ['kustomize', dir]);
  return parseAllDocuments(stdout)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML of ${dir} does not parse: ${d.errors[0]?.message}`);
      return d.toJSON() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** Renders once per test file; a rendering failure fails every test that needs the objects. */
export function lazyRender<T>(render: () => T): () => T {
  let cached: { value: T } | { error: unknown } | undefined;
  return () => {
    cached ??= (() => {
      try {
        return { value: render() };
      } catch (error) {
        return { error };
      }
    })();
    if ('error' in cached) throw cached.error;
    return cached.value;
  };
}

// --- schema validation (kubernetes-models and its CRD packages) --------------------------------

type ModelClass = new (data: unknown) => { validate(): void };

/** The model class of an apiVersion/kind, from kubernetes-models or a CRD package. */
export async function modelFor(apiVersion: string, kind: string): Promise<ModelClass> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const specifier =
    group === 'keda.sh'
      ? `@kubernetes-models/keda/keda.sh/${version}/${kind}`
      : group === 'monitoring.coreos.com'
        ? `@kubernetes-models/prometheus-operator/monitoring.coreos.com/${version}/${kind}`
        : `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`no schema for ${apiVersion} ${kind} (${specifier}): ${(err as Error).message}`);
  }
  const cls = mod[kind];
  if (typeof cls !== 'function') throw new Error(`no model class ${kind} in ${specifier}`);
  return cls as ModelClass;
}

// --- what the code says ---------------------------------------------------------------------------

/** The fleet services: services/<name>/<name>-service.ts (collector, enricher, anonymizer, sink, compactor). */
export function fleetServices(): string[] {
  const dir = join(ROOT, 'services');
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, `${d.name}-service.ts`)))
    .map((d) => d.name)
    .sort();
}

export interface CodeConsumer {
  service: string;
  /** the consumer group suffix passed to groupId(config, …) */
  group: string;
  /** the key of TopicNames it consumes */
  topic: 'raw' | 'enriched' | 'clean' | 'overwrites' | 'dlq';
}

/** Every Kafka consumer the services create: groupId(config, 'x') with inputTopic: ctx.topics.y. */
export function codeConsumers(): CodeConsumer[] {
  const out: CodeConsumer[] = [];
  for (const service of fleetServices()) {
    const src = readFileSync(join(ROOT, 'services', service, `${service}-service.ts`), 'utf8');
    for (const m of src.matchAll(/groupId:\s*groupId\(config,\s*'([\w-]+)'\),\s*inputTopic:\s*ctx\.topics\.(\w+)/g)) {
      out.push({ service, group: m[1] as string, topic: m[2] as CodeConsumer['topic'] });
    }
  }
  return out;
}

/** Stage names the workers label their metrics with (createStageWorker({ name: … })). */
export function codeStages(): string[] {
  const stages = new Set<string>();
  for (const service of fleetServices()) {
    const src = readFileSync(join(ROOT, 'services', service, `${service}-service.ts`), 'utf8');
    for (const m of src.matchAll(/createStageWorker(?:<[^>]*>)?\(\{\s*name:\s*'([\w-]+)'/g)) stages.add(m[1] as string);
  }
  return [...stages].sort();
}

/** Prometheus metric names registered in the code (prom-client: name: 'tracklane_…'). */
export function codeMetrics(): Map<string, 'counter' | 'gauge' | 'histogram'> {
  const found = new Map<string, 'counter' | 'gauge' | 'histogram'>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) {
        const src = readFileSync(p, 'utf8');
        for (const m of src.matchAll(/new (Counter|Gauge|Histogram)\(\{\s*name:\s*'(tracklane_\w+)'/g)) {
          found.set(m[2] as string, (m[1] as string).toLowerCase() as 'counter' | 'gauge' | 'histogram');
        }
      }
    }
  };
  walk(join(ROOT, 'libs'));
  walk(join(ROOT, 'services'));
  return found;
}

/** The zod config schema each entry point parses (`tracklane start <service>`, `migrate`, `topics`). */
export async function configSchemaOf(command: string): Promise<z.ZodType> {
  switch (command) {
    case 'collector':
      return (await import('../../services/collector/collector-service.js')).collectorConfigSchema;
    case 'enricher':
      return (await import('../../services/enricher/enricher-service.js')).enricherConfigSchema;
    case 'anonymizer':
      return (await import('../../services/anonymizer/anonymizer-service.js')).anonymizerConfigSchema;
    case 'sink':
      return (await import('../../services/sink/sink-service.js')).sinkConfigSchema;
    case 'compactor':
      return (await import('../../services/compactor/compactor-service.js')).compactorConfigSchema;
    case 'migrate':
      return (await import('../../services/embedded/config.js')).embeddedConfigSchema;
    case 'topics':
      // NOTE: services/cli/main.ts parses `topics` with exactly this pick
      return (await import('../../services/fleet/fleet-config.js')).fleetConfigSchema.pick({ KAFKA_BROKERS: true, TOPIC_PREFIX: true, KAFKA_PARTITIONS: true, LOG_LEVEL: true });
    default:
      throw new Error(`no config schema known for ${command}`);
  }
}

/** A stand-in for a secret's value in config-completeness checks (long enough for every minimum). */
export const SECRET_PLACEHOLDER = `hex:${'ab'.repeat(32)}`;

/** `image:tag` or `image@sha256:…`, never :latest and never tagless. */
export function isPinnedImage(image: string): boolean {
  const m = /^(?<name>[a-z0-9][a-z0-9._/-]*(?::\d+\/[a-z0-9._/-]+)?)(?::(?<tag>[\w][\w.-]{0,127}))?(?:@sha256:(?<digest>[a-f0-9]{64}))?$/.exec(image);
  if (!m?.groups) return false;
  const { tag, digest } = m.groups;
  if (digest) return true;
  return tag !== undefined && tag !== 'latest' && /\d/.test(tag);
}

/** A compose port as the host sees it: host IP ('' = every interface), published port (0 = random), container port. */
export interface ComposePort {
  hostIp: string;
  published: number;
  target: number;
  protocol: string;
}

/** Reads both forms: docker-compose v1's `[ip:]published:target[/proto]` strings and Compose v2's long form. */
export function composePublishedPort(p: unknown): ComposePort {
  if (typeof p === 'object' && p !== null) {
    const o = p as { host_ip?: string; published?: string | number; target: number; protocol?: string };
    return { hostIp: o.host_ip ?? '', published: Number(o.published ?? 0), target: Number(o.target), protocol: o.protocol ?? 'tcp' };
  }
  const m = /^(?:(?:\[(?<ip6>[^\]]+)\]|(?<ip4>\d{1,3}(?:\.\d{1,3}){3})):)?(?:(?<published>\d+):)?(?<target>\d+)(?:\/(?<protocol>tcp|udp|sctp))?$/.exec(String(p));
  if (!m?.groups) throw new Error(`unexpected compose port ${String(p)}`);
  const g = m.groups;
  return { hostIp: g.ip6 ?? g.ip4 ?? '', published: Number(g.published ?? 0), target: Number(g.target), protocol: g.protocol ?? 'tcp' };
}
