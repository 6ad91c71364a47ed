// The operator API stays off the public edge (DESIGN.md §8): the collector's ADMIN_PORT listener
// is reached through the ClusterIP Service collector-admin by labelled admin clients of the
// namespace only — never through an Ingress, an exposed Service or the public Service — in
// k8s/base and both overlays (docker-compose.yml: compose.test.ts). The resolver that follows
// the routes is first shown to catch each way a manifest could get this wrong.
import { describe, expect, it } from 'vitest';
import { lazyRender, renderKustomization, type K8sObject } from './packaging-support.js';
import {
  adminListeners,
  containerEnv,
  describeRoute,
  egressAllowed,
  ingressPeers,
  isExposedService,
  podTemplates,
  reachesAdmin,
  resolveIngresses,
  resolveServices,
  type AdmittedPeer,
  type PodPort,
} from './service-routes.js';

// NOTE: rendered YAML is walked untyped (`any`): the assertions are its type check.
type Any = any;

const NAMESPACE = 'tracklane';
const COLLECTOR = 'Deployment/collector';
const PUBLIC_SERVICE = 'collector';
const ADMIN_SERVICE = 'collector-admin';
const ADMIN_CLIENT_LABEL = 'tracklane.dev/admin-client';
const ADMIN_CLIENT = { [ADMIN_CLIENT_LABEL]: 'true' };
const KUSTOMIZATIONS = [
  ['base', 'k8s/base'],
  ['dev', 'k8s/overlays/dev'],
  ['prod', 'k8s/overlays/prod'],
];

const find = (objects: K8sObject[], kind: string, name: string): Any => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};
const collectorPod = (objects: K8sObject[]) => {
  const pod = podTemplates(objects).find((t) => t.workload === COLLECTOR);
  if (!pod) throw new Error(`no ${COLLECTOR}`);
  return pod;
};
const collectorAdmin = (objects: K8sObject[]): PodPort => {
  const listener = adminListeners(objects).find((l) => l.workload === COLLECTOR);
  if (!listener) throw new Error(`${COLLECTOR} sets no ADMIN_PORT`);
  return listener;
};
const adminRoutes = (objects: K8sObject[], routes: ReturnType<typeof resolveIngresses>['routes']): string[] =>
  routes.filter((r) => reachesAdmin(r, adminListeners(objects))).map(describeRoute);
/** A peer only admin clients of the namespace match: the label required, no namespaceSelector, no ipBlock. */
const isAdminClientPeer = ({ peer }: AdmittedPeer): boolean =>
  peer !== 'any' && !peer.namespaceSelector && !peer.ipBlock && peer.podSelector?.matchLabels?.[ADMIN_CLIENT_LABEL] === 'true';
const adminPortPeers = (objects: K8sObject[]): AdmittedPeer[] => {
  const admin = collectorAdmin(objects);
  const { isolated, peers } = ingressPeers(objects, NAMESPACE, collectorPod(objects).labels, { number: admin.port, ...(admin.name ? { name: admin.name } : {}) });
  return isolated ? peers : [{ policy: '(no Ingress NetworkPolicy selects the collector)', peer: 'any' }];
};

describe('the route resolver, fed broken copies of k8s/base, catches each exposure of the admin port', () => {
  const base = lazyRender(() => renderKustomization('k8s/base'));
  const broken = (change: (objects: K8sObject[]) => void): K8sObject[] => {
    const objects = structuredClone(base());
    change(objects);
    return objects;
  };
  const paths = (o: K8sObject[]): Any[] => find(o, 'Ingress', 'collector').spec.rules[0].http.paths;
  const publicContainer = (o: K8sObject[]): Any => find(o, 'Deployment', 'collector').spec.template.spec.containers[0];
  const policy = (o: K8sObject[], name: string): Any => find(o, 'NetworkPolicy', name).spec;
  const service = (name: string, spec: Any): K8sObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NAMESPACE }, spec });

  it('finds nothing in k8s/base as written, and follows its Ingress to the public port', () => {
    const { routes, problems } = resolveIngresses(base());
    expect(problems).toEqual([]);
    expect(adminRoutes(base(), routes)).toEqual([]);
    expect(new Set(routes.map((r) => `${r.to.workload}:${r.to.name}:${r.to.port}`))).toEqual(new Set([`${COLLECTOR}:http:8080`]));
    expect(adminPortPeers(base()).filter((p) => !isAdminClientPeer(p))).toEqual([]);
  });

  it.each<[string, (o: K8sObject[]) => void]>([
    ['a path to the admin Service by port name', (o) => paths(o).push({ path: '/ops', pathType: 'Prefix', backend: { service: { name: ADMIN_SERVICE, port: { name: 'admin' } } } })],
    ['a path to the admin Service by port number', (o) => paths(o).push({ path: '/ops', pathType: 'Prefix', backend: { service: { name: ADMIN_SERVICE, port: { number: 8090 } } } })],
    ['a defaultBackend on the admin Service', (o) => (find(o, 'Ingress', 'collector').spec.defaultBackend = { service: { name: ADMIN_SERVICE, port: { number: 8090 } } })],
    ['an nginx default-backend annotation naming the admin Service', (o) => (find(o, 'Ingress', 'collector').metadata.annotations['nginx.ingress.kubernetes.io/default-backend'] = ADMIN_SERVICE)],
    ["the public Service's port targeting 8090 by number", (o) => (find(o, 'Service', PUBLIC_SERVICE).spec.ports[0].targetPort = 8090)],
    ["the public Service's port targeting the container port named admin", (o) => (find(o, 'Service', PUBLIC_SERVICE).spec.ports[0].targetPort = 'admin')],
    ["the public Service's port without targetPort, numbered 8090", (o) => (find(o, 'Service', PUBLIC_SERVICE).spec.ports[0] = { name: 'http', port: 8090 })],
    ["the collector's http container port renumbered to ADMIN_PORT", (o) => (publicContainer(o).ports[0].containerPort = 8090)],
  ])('an Ingress reaching it: %s', (_case, change) => {
    const objects = broken(change);
    expect(adminRoutes(objects, resolveIngresses(objects).routes)).not.toEqual([]);
  });

  it.each<[string, (o: K8sObject[]) => void]>([
    ['a path to a Service that does not exist', (o) => paths(o).push({ path: '/x', pathType: 'Prefix', backend: { service: { name: 'nowhere', port: { number: 80 } } } })],
    ['a path naming a port the Service lacks', (o) => (paths(o)[0].backend.service.port = { name: 'metrics' })],
    ['a resource backend', (o) => paths(o).push({ path: '/x', pathType: 'Prefix', backend: { resource: { apiGroup: 'example.com', kind: 'Thing', name: 'x' } } })],
    ['a path to an ExternalName Service', (o) => {
      o.push(service('ops', { type: 'ExternalName', externalName: `${ADMIN_SERVICE}.${NAMESPACE}.svc.cluster.local` }));
      paths(o).push({ path: '/ops', pathType: 'Prefix', backend: { service: { name: 'ops', port: { number: 8090 } } } });
    }],
    ['a path to a Service without a selector', (o) => {
      o.push(service('ops', { ports: [{ port: 8090 }] }));
      paths(o).push({ path: '/ops', pathType: 'Prefix', backend: { service: { name: 'ops', port: { number: 8090 } } } });
    }],
    ['a configuration snippet (raw nginx config can proxy anywhere)', (o) => (find(o, 'Ingress', 'collector').metadata.annotations['nginx.ingress.kubernetes.io/configuration-snippet'] = 'proxy_pass http://collector-admin:8090;')],
  ])('a route it cannot follow is a problem, never a pass: %s', (_case, change) => {
    expect(resolveIngresses(broken(change)).problems).not.toEqual([]);
  });

  it.each<[string, (o: K8sObject[]) => void]>([
    ['the admin Service as a LoadBalancer', (o) => (find(o, 'Service', ADMIN_SERVICE).spec.type = 'LoadBalancer')],
    ['the admin Service as a NodePort', (o) => (find(o, 'Service', ADMIN_SERVICE).spec.type = 'NodePort')],
    ['the admin Service with externalIPs', (o) => (find(o, 'Service', ADMIN_SERVICE).spec.externalIPs = ['203.0.113.7'])],
    ['another LoadBalancer on the collector pods, port 8090 without targetPort', (o) =>
      o.push(service('collector-lb', { type: 'LoadBalancer', selector: find(o, 'Service', PUBLIC_SERVICE).spec.selector, ports: [{ name: 'x', port: 8090 }] }))],
  ])('an exposed Service reaching it: %s', (_case, change) => {
    const objects = broken(change);
    expect(adminRoutes(objects, resolveServices(objects, isExposedService).routes)).not.toEqual([]);
  });

  it('the public Service listing the admin port', () => {
    const objects = broken((o) => find(o, 'Service', PUBLIC_SERVICE).spec.ports.push({ name: 'ops', port: 9000, targetPort: 'admin' }));
    expect(adminRoutes(objects, resolveServices(objects, (s) => s.metadata.name === PUBLIC_SERVICE).routes)).not.toEqual([]);
  });

  it.each<[string, (o: K8sObject[]) => void]>([
    ['a rule on the admin port without `from` (every source)', (o) => delete policy(o, 'collector-admin-from-admin-clients').ingress[0].from],
    ['the admin-client label from any namespace (namespaceSelector: {})', (o) => (policy(o, 'collector-admin-from-admin-clients').ingress[0].from[0].namespaceSelector = {})],
    ['an ipBlock next to the admin clients', (o) => policy(o, 'collector-admin-from-admin-clients').ingress[0].from.push({ ipBlock: { cidr: '10.0.0.0/8' } })],
    ['the ingress controller on every port (no `ports`)', (o) => delete policy(o, 'collector-from-ingress').ingress[0].ports],
    ['the ingress controller on a port range over 8090', (o) => (policy(o, 'collector-from-ingress').ingress[0].ports = [{ protocol: 'TCP', port: 8000, endPort: 9000 }])],
    ['Prometheus on the admin port by its name', (o) => policy(o, 'metrics-from-prometheus').ingress[0].ports.push({ protocol: 'TCP', port: 'admin' })],
    ['no Ingress policy selecting the collector at all (not isolated)', (o) => o.splice(0, o.length, ...o.filter((x) => x.kind !== 'NetworkPolicy'))],
  ])('a NetworkPolicy admitting more than the admin clients: %s', (_case, change) => {
    expect(adminPortPeers(broken(change)).filter((p) => !isAdminClientPeer(p))).not.toEqual([]);
  });
});

describe.each(KUSTOMIZATIONS)('%s: the operator API is off the public edge', (_name, dir) => {
  const objects = lazyRender(() => renderKustomization(dir));

  it('the collector container sets ADMIN_PORT apart from PORT and declares it as container port "admin"', () => {
    const pod = collectorPod(objects());
    const container = pod.containers.find((c: Any) => c.name === 'collector');
    const env = containerEnv(objects(), pod.namespace, container);
    expect(env.ADMIN_PORT).toMatch(/^\d+$/);
    expect(env.ADMIN_PORT).not.toBe(env.PORT);
    expect(collectorAdmin(objects())).toEqual({ workload: COLLECTOR, container: 'collector', name: 'admin', port: Number(env.ADMIN_PORT) });
    expect(container.ports.find((p: Any) => p.containerPort === Number(env.PORT))?.name).toBe('http');
    // probes stay on the public listener: the admin port may refuse what the kubelet sends one day
    for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) expect(container[probe].httpGet.port, probe).toBe('http');
  });

  it('no Ingress backend reaches the admin port (each followed to the container port)', () => {
    const { routes, problems } = resolveIngresses(objects());
    expect(problems).toEqual([]);
    expect(routes.length).toBeGreaterThan(0);
    expect(adminRoutes(objects(), routes)).toEqual([]);
    expect(routes.map((r) => r.service)).not.toContain(ADMIN_SERVICE);
  });

  it('no LoadBalancer, NodePort or externalIPs Service reaches it; of all Services only collector-admin does', () => {
    const exposed = resolveServices(objects(), isExposedService);
    expect(exposed.problems).toEqual([]);
    expect(adminRoutes(objects(), exposed.routes)).toEqual([]);
    const all = resolveServices(objects());
    expect(all.problems).toEqual([]);
    const toAdmin = all.routes.filter((r) => reachesAdmin(r, adminListeners(objects())));
    expect(new Set(toAdmin.map((r) => r.service))).toEqual(new Set([ADMIN_SERVICE]));
    const publicPorts = find(objects(), 'Service', PUBLIC_SERVICE).spec.ports.map((p: Any) => [p.name, p.port, p.targetPort]);
    expect(publicPorts).toEqual([['http', 8080, 'http']]);
  });

  it('collector-admin: ClusterIP on the admin port, no nodePort or externalIPs, not scraped', () => {
    const svc = find(objects(), 'Service', ADMIN_SERVICE);
    expect(svc.spec.type ?? 'ClusterIP').toBe('ClusterIP');
    expect(svc.spec.externalIPs ?? []).toEqual([]);
    expect(svc.spec.ports).toEqual([{ name: 'admin', port: collectorAdmin(objects()).port, targetPort: 'admin', protocol: 'TCP' }]);
    expect(svc.metadata.labels?.['tracklane.dev/metrics']).toBeUndefined();
  });

  it('NetworkPolicies admit the admin port only from admin clients of the namespace; the public port from the ingress controller', () => {
    const peers = adminPortPeers(objects());
    expect(peers.length).toBeGreaterThan(0);
    expect(peers.filter((p) => !isAdminClientPeer(p))).toEqual([]);
    const pub = ingressPeers(objects(), NAMESPACE, collectorPod(objects()).labels, { number: 8080, name: 'http' });
    expect(pub.peers.map((p) => p.peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'])).toEqual(expect.arrayContaining(['ingress-nginx', 'monitoring']));
  });

  it('an admin client of the namespace may open the admin port (egress under default-deny); no Tracklane workload is one', () => {
    const admin = collectorAdmin(objects());
    const collector = collectorPod(objects()).labels;
    expect(egressAllowed(objects(), NAMESPACE, ADMIN_CLIENT, collector, { number: admin.port, name: 'admin' })).toBe(true);
    expect(egressAllowed(objects(), NAMESPACE, { app: 'something-else' }, collector, { number: admin.port, name: 'admin' })).toBe(false);
    for (const pod of podTemplates(objects())) expect(pod.labels[ADMIN_CLIENT_LABEL], pod.workload).toBeUndefined();
  });
});
