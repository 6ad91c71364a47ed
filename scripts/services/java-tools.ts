// Java and Maven prerequisites for the JVM services (Kafka, Apicurio Registry): presence checks
// with actionable messages, and Maven downloads into a cache directory that appears atomically.
import { createHash } from 'node:crypto';
import { readFile, rename, rm, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { progress, runCommand, ServiceSetupError } from './process-control.js';
import { repoRoot, shortPath } from './paths.js';

const javaHint = 'install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)';
const mavenHint = 'install Maven 3.8+ (Debian: apt-get install maven)';
export const dependencyPlugin = 'org.apache.maven.plugins:maven-dependency-plugin:3.6.1';

let javaChecked: Promise<void> | undefined;

/** Fails with a clear message when `java` is missing or older than 17. Checked once per process. */
export function requireJava(): Promise<void> {
  javaChecked ??= (async () => {
    const { code, output } = await runCommand('java', ['-version'], { cwd: repoRoot, missingHint: javaHint });
    const major = Number(/version "(\d+)/.exec(output)?.[1] ?? 'NaN');
    if (code !== 0 || !(major >= 17)) {
      throw new ServiceSetupError(`java -version reported "${output.split('\n')[0] ?? ''}": ${javaHint}`);
    }
  })();
  return javaChecked;
}

async function fileSha(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex').slice(0, 16);
}

/**
 * Runs `mvn -f pom copy-dependencies` into outputDir unless outputDir/.complete names the same
 * pom hash (so a version bump in the pom refetches). Downloads into a sibling temp dir and
 * renames it, so an interrupted download never looks complete.
 */
export async function fetchMavenDependencies(opts: {
  name: string;
  pom: string;
  outputDir: string;
  extraArgs?: readonly string[];
}): Promise<boolean> {
  const marker = join(opts.outputDir, '.complete');
  const wanted = await fileSha(opts.pom);
  const have = await readFile(marker, 'utf8').catch(() => '');
  if (have.trim() === wanted) return false;

  const tmpDir = `${opts.outputDir}.tmp-${process.pid}`;
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(dirname(opts.outputDir), { recursive: true });
  progress(`${opts.name}: fetching from Maven Central (${shortPath(opts.pom)} → ${shortPath(opts.outputDir)}; ~/.m2 caches it)`);
  const started = Date.now();
  // NOTE: -Dstyle.color=never keeps ANSI escapes out of the error lines we quote.
  const args = ['-B', '-q', '-Dstyle.color=never', '-f', opts.pom, `${dependencyPlugin}:copy-dependencies`, `-DoutputDirectory=${tmpDir}`, ...(opts.extraArgs ?? [])];
  const { code, output } = await runCommand('mvn', args, { cwd: repoRoot, missingHint: mavenHint });
  if (code !== 0) {
    await rm(tmpDir, { recursive: true, force: true });
    const errors = output
      // NOTE: Maven 3.8 prints ANSI colour codes even with -B and style.color=never.
      .replace(/\u001b\[[0-9;]*m/g, '')
      .split('\n')
      .filter((l) => /\[ERROR\] \S/.test(l) && !/re-run maven/i.test(l))
      .slice(0, 1)
      .join('\n');
    throw new ServiceSetupError(
      `${opts.name}: Maven download failed (mvn exit ${code}; Maven Central must be reachable):\n${errors || output.slice(-2000)}`,
    );
  }
  await writeFile(join(tmpDir, '.complete'), wanted + '\n');
  await rm(opts.outputDir, { recursive: true, force: true });
  await rename(tmpDir, opts.outputDir);
  progress(`${opts.name}: fetched in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return true;
}
