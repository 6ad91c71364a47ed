// The container image, checked offline (no Docker engine here): the Dockerfile's stages and
// runtime settings, what its COPY lines need from the repository, and that the fleet's code
// path never loads chDB — the runtime image deletes chDB's native engine.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './packaging-support.js';

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions with continuation lines joined and comments dropped. */
function instructions(text: string): Instruction[] {
  const joined = text.replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)\s+([\s\S]*)$/.exec(l);
      if (!m) throw new Error(`unparsable Dockerfile line: ${l}`);
      return { op: (m[1] as string).toUpperCase(), args: (m[2] as string).trim() };
    });
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const all = instructions(dockerfile);
const stages: { name: string; from: string; body: Instruction[] }[] = [];
for (const i of all) {
  if (i.op === 'FROM') {
    const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
    stages.push({ from: m?.[1] ?? '', name: m?.[2] ?? String(stages.length), body: [] });
  } else stages.at(-1)?.body.push(i);
}
const runtime = stages.at(-1) as (typeof stages)[number];
const args = (op: string, body = runtime.body) => body.filter((i) => i.op === op).map((i) => i.args);

describe('Dockerfile', () => {
  it('is multi-stage on a pinned Node 20 slim base', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'deps', 'runtime']);
    const base = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    expect(base).toMatch(/^node:20\.\d+\.\d+-(bookworm|bullseye)-slim(@sha256:[a-f0-9]{64})?$/);
    for (const s of stages) expect(s.from).toBe('${NODE_IMAGE}');
  });

  it('builds dist/ with the dev dependencies, and installs production dependencies with npm ci --omit=dev', () => {
    const build = stages.find((s) => s.name === 'build') as (typeof stages)[number];
    expect(args('RUN', build.body).join('\n')).toMatch(/npm ci\b/);
    expect(args('RUN', build.body).join('\n')).toMatch(/npm run build/);
    const deps = args('RUN', (stages.find((s) => s.name === 'deps') as (typeof stages)[number]).body).join('\n');
    expect(deps).toMatch(/npm ci --omit=dev/);
  });

  it('leaves chDB\'s native engine out of the runtime image', () => {
    const deps = args('RUN', (stages.find((s) => s.name === 'deps') as (typeof stages)[number]).body).join('\n');
    expect(deps).toContain('rm -rf node_modules/@chdb');
    // the runtime stage takes node_modules from deps, never from build (which has chDB and dev deps)
    expect(args('COPY').filter((c) => /node_modules/.test(c))).toEqual(['--from=deps /src/node_modules ./node_modules']);
  });

  it('runs as a non-root user, under tini, `tracklane start collector` by default, with a /healthz HEALTHCHECK', () => {
    const user = args('USER').at(-1) ?? '';
    expect(user).toMatch(/^[1-9]\d*(:[1-9]\d*)?$/);
    expect(JSON.parse(args('ENTRYPOINT').at(-1) ?? '[]')).toEqual(['/usr/bin/tini', '--', 'node', 'dist/services/cli/main.js']);
    expect(JSON.parse(args('CMD').at(-1) ?? '[]')).toEqual(['start', 'collector']);
    expect(args('RUN').join('\n')).toMatch(/apt-get install -y --no-install-recommends tini/);
    const hc = args('HEALTHCHECK').at(-1) ?? '';
    expect(hc).toContain('/healthz');
    expect(hc).toContain('process.env.PORT');
    expect(/ENV[\s\S]*PORT=8080/.test(dockerfile)).toBe(true);
  });

  it('the entry point it runs is compiled by the build (tsconfig.build.json covers services/cli/main.ts)', () => {
    const cfg = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    expect(cfg.include).toContain('services');
    expect(existsSync(join(ROOT, 'services', 'cli', 'main.ts'))).toBe(true);
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.build).toMatch(/tsc -p tsconfig\.build\.json/);
  });

  it('every path it copies from the build context exists in the repository', () => {
    for (const c of args('COPY')) {
      const parts = c.split(/\s+/).filter((p) => !p.startsWith('--'));
      const sources = parts.slice(0, -1);
      const fromBuild = c.includes('--from=build');
      const fromDeps = c.includes('--from=deps');
      for (const src of sources) {
        if (fromDeps || /^\/src\/(dist|node_modules)\b/.test(src)) continue;
        const rel = fromBuild ? src.replace(/^\/src\//, '') : src;
        expect(existsSync(join(ROOT, rel)), `COPY source ${rel}`).toBe(true);
      }
    }
  });

  it('.dockerignore keeps node_modules, dist, data and .git out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const p of ['node_modules', 'dist', 'data', '.git']) expect(ignored).toContain(p);
    // …but not what the build needs
    for (const p of ['libs', 'services', 'schemas', 'bin', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) expect(ignored).not.toContain(p);
  });
});

describe('chDB stays out of the fleet code path', () => {
  const sources = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
      .map((e) => join(e.parentPath, e.name));

  it('no module imports chdb statically; only libs/clickhouse/client.ts and the analyst SQL engine load it, on demand, without a URL', () => {
    const loaders: string[] = [];
    for (const file of [...sources('libs'), ...sources('services')]) {
      const src = readFileSync(file, 'utf8');
      expect(src, file).not.toMatch(/^\s*import\s+(?!type\b)[^;]*from\s+'chdb(\/[\w-]+)?'/m);
      expect(src, file).not.toMatch(/^\s*import\s+'chdb/m);
      if (/require\('chdb(\/[\w-]+)?'\)|import\('chdb/.test(src)) loaders.push(relative(ROOT, file));
    }
    expect(loaders.sort()).toEqual(['libs/clickhouse/analyst-engines.ts', 'libs/clickhouse/client.ts']);
    // the analyst engine loads chDB only inside chdbEngine(), which openAnalystSql calls only without a URL
    const engines = readFileSync(join(ROOT, 'libs', 'clickhouse', 'analyst-engines.ts'), 'utf8');
    const chdbFn = engines.slice(engines.indexOf('export async function chdbEngine'));
    expect(engines.indexOf("import('chdb")).toBeGreaterThan(engines.indexOf('export async function chdbEngine'));
    expect(chdbFn.indexOf("import('chdb")).toBeLessThan(chdbFn.indexOf('\n}\n'));
    const setup = readFileSync(join(ROOT, 'libs', 'clickhouse', 'analyst-setup.ts'), 'utf8');
    expect(setup.indexOf("engine: 'chdb'")).toBeGreaterThan(setup.indexOf('if (!s.url)'));
    expect(setup.indexOf("engine: 'chdb'")).toBeLessThan(setup.indexOf("engine: 'server'"));
    const client = readFileSync(join(ROOT, 'libs', 'clickhouse', 'client.ts'), 'utf8');
    // createClickHouse returns the HTTP client before chDB is ever required
    const body = client.slice(client.indexOf('export function createClickHouse'));
    expect(body.indexOf('return createClient({')).toBeLessThan(body.indexOf('createChdbClient(cfg)'));
    expect(body.slice(0, body.indexOf('createChdbClient(cfg)'))).toMatch(/if \(cfg\.url !== undefined\)/);
  });

  it('the ClickHouse-using fleet services require CLICKHOUSE_URL (so they always take the HTTP path)', async () => {
    const { sinkConfigSchema } = await import('../../services/sink/sink-service.js');
    const { compactorConfigSchema } = await import('../../services/compactor/compactor-service.js');
    for (const schema of [sinkConfigSchema, compactorConfigSchema]) {
      const r = schema.safeParse({ KAFKA_BROKERS: 'k:9092', SCHEMA_REGISTRY_URL: 'http://r:8081', TRACKLANE_MASTER_KEY: 'x' });
      expect(r.success).toBe(false);
      expect(r.error?.issues.map((i) => i.path.join('.'))).toContain('CLICKHOUSE_URL');
    }
    // the collector uses ClickHouse only when CLICKHOUSE_URL is set (analyst queries, receipts)
    expect(readFileSync(join(ROOT, 'services', 'collector', 'collector-service.ts'), 'utf8')).toMatch(/const analyst = config\.CLICKHOUSE_URL\s*\?/);
  });
});
