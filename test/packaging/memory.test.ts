// Worker memory settings, checked offline: the V8 heap flags the image runs every service with
// (which bench/fleet-bench.ts reads and starts its workers with), that no manifest overrides
// them, that container limits leave room above the heap, and the prebuilt compact geo data.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ROOT, type K8sObject } from './packaging-support.js';

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const nodeOptions = /NODE_OPTIONS="([^"]*)"/.exec(dockerfile)?.[1] ?? '';
const flag = (name: string): number => Number(new RegExp(`--${name}=(\\d+)`).exec(nodeOptions)?.[1] ?? Number.NaN);

function manifests(dir: string): { file: string; text: string; docs: K8sObject[] }[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.yaml'))
    .map((e) => {
      const file = join(e.parentPath, e.name);
      const text = readFileSync(file, 'utf8');
      return { file, text, docs: parseAllDocuments(text).map((d) => d.toJSON() as K8sObject).filter((d) => d !== null) };
    });
}

const mebibytes = (v: string): number => {
  const m = /^(\d+)(Mi|Gi)$/.exec(v);
  if (!m) throw new Error(`unexpected memory quantity ${v}`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
};

describe('worker memory settings', () => {
  it('the image sets the V8 heap sizes in NODE_OPTIONS', () => {
    expect(flag('max-old-space-size')).toBeGreaterThanOrEqual(256);
    expect(flag('max-old-space-size')).toBeLessThanOrEqual(512);
  });

  it('the fleet bench starts its workers with the image\'s NODE_OPTIONS', () => {
    const bench = readFileSync(join(ROOT, 'bench', 'fleet-bench.ts'), 'utf8');
    expect(bench).toMatch(/const nodeArgs: string\[\] = imageNodeFlags\(\);/);
  });

  it('no manifest overrides NODE_OPTIONS (the bench would not measure what runs)', () => {
    // an env entry (`- name: NODE_OPTIONS`) or a ConfigMap / compose key (`NODE_OPTIONS: …`)
    const sets = /(name:\s*["']?NODE_OPTIONS\b|^\s*-?\s*["']?NODE_OPTIONS["']?\s*[:=])/m;
    for (const { file, text } of manifests('k8s')) expect(text, file).not.toMatch(sets);
    expect(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')).not.toMatch(sets);
  });

  it('every worker Deployment\'s memory limit leaves ≥ 128 MiB above the old-space limit', () => {
    const heap = flag('max-old-space-size');
    let checked = 0;
    for (const { file, docs } of [...manifests('k8s/base'), ...manifests('k8s/overlays')]) {
      for (const d of docs) {
        if (d.kind !== 'Deployment') continue;
        for (const c of d.spec?.template?.spec?.containers ?? []) {
          const limit = c.resources?.limits?.memory as string | undefined;
          if (limit === undefined) continue;
          expect(mebibytes(limit), `${file} ${d.metadata.name}`).toBeGreaterThanOrEqual(heap + 128);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThanOrEqual(5);
  });

  it('the image prebuilds the compact geo data where GEOIP_CACHE_DIR points, with a script that exists', () => {
    const run = /RUN .*node dist\/services\/enricher\/prebuild-geo\.js ([^\s;]+)/.exec(dockerfile);
    expect(run).not.toBeNull();
    expect(/GEOIP_CACHE_DIR=(\S+)/.exec(dockerfile)?.[1]).toBe(run?.[1]);
    expect(existsSync(join(ROOT, 'services', 'enricher', 'prebuild-geo.ts'))).toBe(true);
  });

  it('the enricher\'s /tmp has room for building the compact form of a mounted GEOIP_DB', () => {
    const enricher = manifests('k8s/base').find((m) => m.file.endsWith('enricher.yaml'));
    const deployment = enricher?.docs.find((d) => d.kind === 'Deployment');
    const tmp = (deployment?.spec.template.spec.volumes ?? []).find((v: { name: string }) => v.name === 'tmp');
    expect(mebibytes(tmp?.emptyDir?.sizeLimit ?? '0Mi')).toBeGreaterThanOrEqual(256);
  });
});
