// Follows traffic through rendered manifests the way the cluster would: an Ingress backend → its
// Service port → the targetPort → the container ports of the pods that Service selects; and which
// NetworkPolicy peers a pod admits on a port. Whatever it cannot follow is a problem, never a pass.
import type { K8sObject } from './packaging-support.js';

// NOTE: rendered YAML is walked untyped (`any`): the assertions are its type check.
type Any = any;

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A Kubernetes label selector against a label set; an empty selector matches every label set. */
export function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  const byLabel = Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => l[k] === v);
  return (
    byLabel &&
    (selector?.matchExpressions ?? []).every((e) => {
      const values = e.values ?? [];
      switch (e.operator) {
        case 'In':
          return e.key in l && values.includes(l[e.key] as string);
        case 'NotIn':
          return !(e.key in l) || !values.includes(l[e.key] as string);
        case 'Exists':
          return e.key in l;
        case 'DoesNotExist':
          return !(e.key in l);
        default:
          throw new Error(`unknown label selector operator ${e.operator}`);
      }
    })
  );
}

const nsOf = (o: K8sObject): string => o.metadata.namespace ?? '';

export interface PodTemplate {
  /** Kind/name of the workload, e.g. Deployment/collector */
  workload: string;
  namespace: string;
  labels: Record<string, string>;
  containers: Any[];
}

/** The pod templates of every workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob). */
export function podTemplates(objects: K8sObject[]): PodTemplate[] {
  const out: PodTemplate[] = [];
  for (const o of objects) {
    const template =
      o.kind === 'CronJob' ? o.spec?.jobTemplate?.spec?.template : ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'].includes(o.kind) ? o.spec?.template : undefined;
    if (!template) continue;
    out.push({
      workload: `${o.kind}/${o.metadata.name}`,
      namespace: nsOf(o),
      labels: template.metadata?.labels ?? {},
      containers: [...(template.spec?.initContainers ?? []), ...(template.spec?.containers ?? [])],
    });
  }
  return out;
}

/**
 * A container's environment as the kubelet builds it: envFrom ConfigMaps, then env (literal
 * values and configMapKeyRef resolved; secrets and fields stand as `<secret>` / `<field>`).
 */
export function containerEnv(objects: K8sObject[], namespace: string, container: Any): Record<string, string> {
  const configMap = (name: string): Record<string, string> | undefined =>
    objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name && nsOf(o) === namespace)?.data;
  const env: Record<string, string> = {};
  for (const f of container.envFrom ?? []) {
    if (!f.configMapRef) continue;
    for (const [k, v] of Object.entries(configMap(f.configMapRef.name) ?? {})) env[`${f.prefix ?? ''}${k}`] = v;
  }
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.configMapKeyRef) {
      const v = configMap(e.valueFrom.configMapKeyRef.name)?.[e.valueFrom.configMapKeyRef.key];
      if (v !== undefined) env[e.name] = v;
    } else if (e.valueFrom?.secretKeyRef) env[e.name] = '<secret>';
    else if (e.valueFrom) env[e.name] = '<field>';
    else env[e.name] = '';
  }
  return env;
}

/** Where traffic ends: one port of the pods of one workload (container '' for a port no container declares). */
export interface PodPort {
  workload: string;
  container: string;
  name?: string;
  port: number;
}

/** A path traffic can take from an entry point (an Ingress backend, a Service) to a pod port. */
export interface Route {
  from: string;
  service: string;
  servicePort: string;
  to: PodPort;
}

export interface Resolution {
  routes: Route[];
  problems: string[];
}

export const describeRoute = (r: Route): string =>
  `${r.from} → Service ${r.service}:${r.servicePort} → ${r.to.workload}${r.to.container ? `/${r.to.container}` : ''}:${r.to.name ?? ''}(${r.to.port})`;

/** Which Service port a backend names: by name, by number, or every port (undefined). */
export type ServicePortRef = { name?: string; number?: number } | undefined;

/** The pod ports a Service port sends traffic to: targetPort by name or number, absent: the port itself. */
export function resolveServicePort(objects: K8sObject[], service: K8sObject, ref: ServicePortRef, from: string): Resolution {
  const where = `${from} → Service ${service.metadata.name}`;
  if (service.spec?.type === 'ExternalName') return { routes: [], problems: [`${where}: ExternalName (${service.spec.externalName}) cannot be followed`] };
  const selector: Record<string, string> | undefined = service.spec?.selector;
  if (!selector || Object.keys(selector).length === 0) return { routes: [], problems: [`${where}: no selector (hand-written Endpoints cannot be followed)`] };
  const ports: Any[] = (service.spec?.ports ?? []).filter(
    (p: Any) => ref === undefined || (ref.name !== undefined ? p.name === ref.name : p.port === ref.number),
  );
  if (ports.length === 0) return { routes: [], problems: [`${where}: no port ${JSON.stringify(ref)}`] };
  const pods = podTemplates(objects).filter((t) => t.namespace === nsOf(service) && selectorMatches({ matchLabels: selector }, t.labels));
  if (pods.length === 0) return { routes: [], problems: [`${where}: selects no pods`] };
  const routes: Route[] = [];
  const problems: string[] = [];
  for (const sp of ports) {
    const target: string | number = sp.targetPort ?? sp.port;
    const servicePort = String(sp.name ?? sp.port);
    for (const pod of pods) {
      const declared = pod.containers.flatMap((c: Any) =>
        (c.ports ?? [])
          .filter((cp: Any) => (typeof target === 'string' ? cp.name === target : cp.containerPort === target))
          .map((cp: Any): PodPort => ({ workload: pod.workload, container: c.name, name: cp.name, port: cp.containerPort })),
      );
      if (declared.length > 0) for (const to of declared) routes.push({ from, service: service.metadata.name, servicePort, to });
      // NOTE: a numeric targetPort reaches the pod whether or not a container declares it
      else if (typeof target === 'number') routes.push({ from, service: service.metadata.name, servicePort, to: { workload: pod.workload, container: '', port: target } });
      else problems.push(`${where}:${servicePort}: ${pod.workload} has no container port named ${target}`);
    }
  }
  return { routes, problems };
}

const merge = (all: Resolution[]): Resolution => ({ routes: all.flatMap((r) => r.routes), problems: all.flatMap((r) => r.problems) });

function resolveBackend(objects: K8sObject[], namespace: string, backend: Any, from: string): Resolution {
  if (!backend?.service) return { routes: [], problems: [`${from}: a backend that is not a Service (${JSON.stringify(backend)}) cannot be followed`] };
  const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === backend.service.name && nsOf(o) === namespace);
  if (!service) return { routes: [], problems: [`${from}: no Service ${backend.service.name}`] };
  const port = backend.service.port ?? {};
  return resolveServicePort(objects, service, port.name !== undefined ? { name: port.name } : { number: port.number }, from);
}

/** ingress-nginx annotations that route: its default backend (a Service, every port) and raw config snippets. */
const NGINX_DEFAULT_BACKEND = 'nginx.ingress.kubernetes.io/default-backend';

/** Every route of every Ingress: default backend, each rule's paths, and annotations that route. */
export function resolveIngresses(objects: K8sObject[]): Resolution {
  const out: Resolution[] = [];
  for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
    const name = `Ingress ${ing.metadata.name}`;
    const ns = nsOf(ing);
    if (ing.spec?.defaultBackend) out.push(resolveBackend(objects, ns, ing.spec.defaultBackend, `${name} defaultBackend`));
    for (const rule of ing.spec?.rules ?? []) {
      for (const p of rule.http?.paths ?? []) out.push(resolveBackend(objects, ns, p.backend, `${name} ${rule.host ?? '*'}${p.path ?? ''}`));
    }
    for (const [key, value] of Object.entries(ing.metadata.annotations ?? {})) {
      // TRICKY: a snippet is raw nginx config (proxy_pass anywhere); it cannot be followed, so it is refused
      if (key.endsWith('-snippet')) out.push({ routes: [], problems: [`${name}: annotation ${key} cannot be followed`] });
      if (key === NGINX_DEFAULT_BACKEND) {
        const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === value && nsOf(o) === ns);
        out.push(service ? resolveServicePort(objects, service, undefined, `${name} ${key}`) : { routes: [], problems: [`${name} ${key}: no Service ${value}`] });
      }
    }
  }
  return merge(out);
}

/** Whether a Service is reachable from outside the cluster network: LoadBalancer, NodePort or externalIPs. */
export const isExposedService = (s: K8sObject): boolean =>
  ['LoadBalancer', 'NodePort'].includes(s.spec?.type) || (s.spec?.externalIPs ?? []).length > 0;

/** Every route of every Service (all ports) matching a filter, from the Service itself. */
export function resolveServices(objects: K8sObject[], which: (s: K8sObject) => boolean = () => true): Resolution {
  return merge(
    objects
      .filter((o) => o.kind === 'Service' && which(o))
      .map((s) => resolveServicePort(objects, s, undefined, `Service ${s.metadata.name} (${s.spec?.type ?? 'ClusterIP'})`)),
  );
}

/** The operator listeners: every container whose environment sets ADMIN_PORT, with the container port that matches it. */
export function adminListeners(objects: K8sObject[]): PodPort[] {
  return podTemplates(objects).flatMap((pod) =>
    pod.containers.flatMap((c: Any) => {
      const value = containerEnv(objects, pod.namespace, c).ADMIN_PORT;
      if (value === undefined) return [];
      const port = Number(value);
      const declared = (c.ports ?? []).find((cp: Any) => cp.containerPort === port);
      return [{ workload: pod.workload, container: c.name, port, ...(declared?.name ? { name: declared.name } : {}) }];
    }),
  );
}

/** The conventional name of an operator listener's container port. */
export const ADMIN_PORT_NAME = 'admin';

/** A route ends on an operator listener: its number in that workload, or a container port named `admin`. */
export const reachesAdmin = (route: Route, listeners: PodPort[]): boolean =>
  route.to.name === ADMIN_PORT_NAME || listeners.some((l) => l.workload === route.to.workload && l.port === route.to.port);

// --- NetworkPolicies -------------------------------------------------------------------------------

const policyTypes = (p: K8sObject): string[] => p.spec?.policyTypes ?? ['Ingress', ...(p.spec?.egress ? ['Egress'] : [])];

export interface PortRef {
  number: number;
  name?: string;
  protocol?: string;
}

/** A NetworkPolicy rule's `ports` admits this port: no ports means all; ranges (endPort) and named ports count. */
export function portsCover(ports: Any[] | undefined, p: PortRef): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((e) => {
    if ((e.protocol ?? 'TCP') !== (p.protocol ?? 'TCP')) return false;
    if (e.port === undefined) return true;
    if (typeof e.port === 'string') return e.port === p.name;
    return e.endPort !== undefined ? p.number >= e.port && p.number <= e.endPort : e.port === p.number;
  });
}

/** A peer of an ingress rule: one `from` entry, or 'any' for a rule without `from`. */
export interface AdmittedPeer {
  policy: string;
  peer: Any | 'any';
}

/**
 * Who may connect to a pod's port. `isolated` false: no Ingress policy selects the pod, so
 * everyone may; otherwise exactly the peers listed (the union of the rules that cover the port).
 */
export function ingressPeers(objects: K8sObject[], namespace: string, podLabels: Record<string, string>, port: PortRef): { isolated: boolean; peers: AdmittedPeer[] } {
  const policies = objects.filter(
    (o) => o.kind === 'NetworkPolicy' && nsOf(o) === namespace && policyTypes(o).includes('Ingress') && selectorMatches(o.spec?.podSelector, podLabels),
  );
  const peers: AdmittedPeer[] = [];
  for (const p of policies) {
    for (const rule of p.spec?.ingress ?? []) {
      if (!portsCover(rule.ports, port)) continue;
      const from: Any[] = rule.from ?? [];
      if (from.length === 0) peers.push({ policy: p.metadata.name, peer: 'any' });
      else for (const peer of from) peers.push({ policy: p.metadata.name, peer });
    }
  }
  return { isolated: policies.length > 0, peers };
}

/** Whether a pod (labels, namespace) may open a connection to another pod of the same namespace on a port. */
export function egressAllowed(objects: K8sObject[], namespace: string, fromLabels: Record<string, string>, toLabels: Record<string, string>, port: PortRef): boolean {
  const policies = objects.filter(
    (o) => o.kind === 'NetworkPolicy' && nsOf(o) === namespace && policyTypes(o).includes('Egress') && selectorMatches(o.spec?.podSelector, fromLabels),
  );
  if (policies.length === 0) return true;
  const nsLabels = { ...(objects.find((o) => o.kind === 'Namespace' && o.metadata.name === namespace)?.metadata.labels ?? {}), 'kubernetes.io/metadata.name': namespace };
  return policies.some((p) =>
    (p.spec?.egress ?? []).some(
      (rule: Any) =>
        portsCover(rule.ports, port) &&
        ((rule.to ?? []).length === 0 ||
          rule.to.some(
            (peer: Any) =>
              !peer.ipBlock &&
              (peer.namespaceSelector === undefined || selectorMatches(peer.namespaceSelector, nsLabels)) &&
              selectorMatches(peer.podSelector, toLabels),
          )),
    ),
  );
}
