import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { FAULT_POINTS, FAULT_POINT_ENV, parseFaultSpec, runsFromSources, shouldFire } from './fault-points.js';

const source = fileURLToPath(new URL('./fault-points.ts', import.meta.url));

describe('fault point spec', () => {
  it.each([
    ['compactor.merge', { name: 'compactor.merge', nth: 1 }],
    ['compactor.merge:3', { name: 'compactor.merge', nth: 3 }],
    ['  compactor.verify:1 ', { name: 'compactor.verify', nth: 1 }],
    ['', null],
    [undefined, null],
    ['compactor.merge:0', null],
    ['compactor.merge:-1', null],
    ['compactor.merge:x', null],
    ['compactor.merge:', null],
    ['a b', null],
  ])('%j → %j', (spec, parsed) => {
    expect(parseFaultSpec(spec)).toEqual(parsed);
  });

  it.each([
    // spec, point, count, fromSources, fires
    ['compactor.merge', 'compactor.merge', 1, true, true],
    ['compactor.merge', 'compactor.merge', 2, true, false],
    ['compactor.merge:2', 'compactor.merge', 1, true, false],
    ['compactor.merge:2', 'compactor.merge', 2, true, true],
    ['compactor.merge', 'compactor.verify', 1, true, false],
    [undefined, 'compactor.merge', 1, true, false],
    // a build never fires, whatever the variable says
    ['compactor.merge', 'compactor.merge', 1, false, false],
    ['compactor.merge:2', 'compactor.merge', 2, false, false],
  ] as const)('%j at %s (#%d, from sources %s) → %s', (spec, name, count, fromSources, fires) => {
    expect(shouldFire(spec, name, count, fromSources)).toBe(fires);
  });

  it.each([
    ['file:///work/main/libs/core/fault-points.ts', undefined, true],
    ['file:///work/main/libs/core/fault-points.ts', 'test', true],
    ['file:///work/main/libs/core/fault-points.ts?v=1', 'development', true],
    ['file:///work/main/libs/core/fault-points.ts', 'production', false],
    ['file:///app/dist/libs/core/fault-points.js', undefined, false],
    ['file:///app/dist/libs/core/fault-points.js', 'development', false],
    ['not a url', undefined, false],
  ])('%s with NODE_ENV=%s runs from sources: %s', (url, nodeEnv, expected) => {
    expect(runsFromSources(url, nodeEnv)).toBe(expected);
  });

  it('names every point once, as stable dotted strings', () => {
    expect(new Set(FAULT_POINTS).size).toBe(FAULT_POINTS.length);
    for (const p of FAULT_POINTS) expect(p).toMatch(/^[a-z]+\.[a-z_]+$/);
    expect(FAULT_POINTS).toEqual(['compactor.registry', 'compactor.mutation', 'compactor.merge', 'compactor.verify']);
  });
});

describe('fault points in a process', () => {
  // The module as `npm run build` emits it (tsc; NodeNext in a package of type module emits ES
  // modules), in a package of type module like dist/ of the image.
  const buildDir = mkdtempSync(join(tmpdir(), 'tracklane-fault-points-'));
  afterAll(() => rmSync(buildDir, { recursive: true, force: true }));
  const emitted = ts.transpileModule(readFileSync(source, 'utf8'), {
    compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    fileName: 'fault-points.ts',
  }).outputText;
  writeFileSync(join(buildDir, 'package.json'), '{"type":"module"}');
  writeFileSync(join(buildDir, 'fault-points.js'), emitted);

  /** imports the module at `url`, reaches `compactor.merge` `times` times, then prints alive */
  const run = (url: string, env: Record<string, string>, times = 1, loader: string[] = []) => {
    const script = `const m = await import(${JSON.stringify(url)}); for (let i = 0; i < ${times}; i++) m.faultPoint('compactor.merge'); console.log('alive');`;
    const { [FAULT_POINT_ENV]: _f, NODE_ENV: _n, ...base } = process.env;
    return spawnSync(process.execPath, [...loader, '--input-type=module', '-e', script], { env: { ...base, ...env }, encoding: 'utf8', timeout: 30_000 });
  };
  const fromSources = (env: Record<string, string>, times = 1) => run(pathToFileURL(source).href, env, times, ['--import', 'tsx']);
  const fromBuild = (env: Record<string, string>, times = 1) => run(pathToFileURL(join(buildDir, 'fault-points.js')).href, env, times);

  it('from the sources: SIGKILL at the named point, the N-th time', () => {
    const killed = fromSources({ [FAULT_POINT_ENV]: 'compactor.merge' });
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.stdout).not.toContain('alive');
    expect(killed.stderr).toContain('fault point compactor.merge reached (1): SIGKILL');
    expect(fromSources({ [FAULT_POINT_ENV]: 'compactor.merge:2' }, 1)).toMatchObject({ status: 0, signal: null, stdout: 'alive\n' });
    expect(fromSources({ [FAULT_POINT_ENV]: 'compactor.merge:2' }, 2).signal).toBe('SIGKILL');
    expect(fromSources({ [FAULT_POINT_ENV]: 'compactor.verify' })).toMatchObject({ status: 0, stdout: 'alive\n' });
    expect(fromSources({})).toMatchObject({ status: 0, stdout: 'alive\n' });
  }, 60_000);

  it('from the sources with NODE_ENV=production: off', () => {
    expect(fromSources({ [FAULT_POINT_ENV]: 'compactor.merge', NODE_ENV: 'production' })).toMatchObject({ status: 0, signal: null, stdout: 'alive\n' });
  }, 30_000);

  it('a build (compiled .js) ignores the variable', () => {
    expect(emitted).toContain('process.kill(process.pid'); // the same code, compiled
    for (const nodeEnv of ['production', 'development']) {
      const r = fromBuild({ [FAULT_POINT_ENV]: 'compactor.merge', NODE_ENV: nodeEnv });
      expect(r).toMatchObject({ status: 0, signal: null, stdout: 'alive\n', stderr: '' });
    }
  }, 30_000);
});
