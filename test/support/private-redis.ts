// A Redis server of a test's own (on a free port, data kept on disk across restarts), so a
// test can stop and restart Redis without disturbing other tests that share the machine's.
// Optionally with a password, ACL users (an ACL file, kept across restarts) and TLS only, on a
// CA and server certificate generated for it with the openssl CLI.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { aclFileLine, aclPasswordHash } from '../../libs/config/redis-acl.js';
import { freePort } from './child-process.js';
import { eventually, GiveUp } from './poll.js';

export interface PrivateRedisOptions {
  /** the `default` user's password (unset: no password) */
  password?: string;
  /** ACL users besides `default`, e.g. with the rules of libs/config/redis-acl.ts */
  aclUsers?: { name: string; password: string; rules: readonly string[] }[];
  /** TLS only (`--port 0`), on a generated CA; clients are not asked for a certificate */
  tls?: boolean;
  /** the names the server certificate holds (subjectAltName); default 127.0.0.1 and localhost */
  certificateHosts?: string[];
}

export interface PrivateRedis {
  /** redis://127.0.0.1:<port>, or rediss://… with tls; never with credentials */
  url: string;
  port: number;
  /** the CA that signed the server's certificate (tls only) */
  caFile?: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** stop and delete its data */
  destroy(): Promise<void>;
}

export interface TlsFiles {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * A fresh CA and a server certificate it signed for `hosts` (IP addresses or DNS names), as
 * PEM files in dir. Also usable for "another CA" in tests of untrusted certificates.
 */
export function generateTlsFiles(dir: string, hosts: string[] = ['127.0.0.1', 'localhost'], name = 'redis'): TlsFiles {
  const f = (suffix: string): string => join(dir, `${name}-${suffix}`);
  const files = { caFile: f('ca.pem'), certFile: f('server.pem'), keyFile: f('server.key') };
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', files.caFile, '-days', '2', '-subj', `/CN=tracklane test CA ${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', ...ec, '-keyout', files.keyFile, '-out', f('server.csr'), '-subj', `/CN=${hosts[0] ?? 'redis'}`);
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  writeFileSync(f('server.ext'), `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', files.caFile, '-CAkey', f('ca.key'), '-CAcreateserial', '-out', files.certFile, '-days', '2', '-extfile', f('server.ext'));
  return files;
}

export async function startPrivateRedis(opts: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tracklane-redis-'));
  let child: ChildProcess | undefined;

  const tls = opts.tls ? generateTlsFiles(dir, opts.certificateHosts) : undefined;
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no']
    : ['--port', String(port)];
  // NOTE: an ACL file (not requirepass, which Redis ignores beside one) keeps users across restarts
  const auth: string[] = [];
  if (opts.password !== undefined || (opts.aclUsers ?? []).length > 0) {
    const aclFile = join(dir, 'users.acl');
    const defaultUser = opts.password === undefined ? 'user default on nopass ~* &* +@all' : aclFileLine('default', ['~*', '&*', '+@all'], aclPasswordHash(opts.password));
    const lines = [defaultUser, ...(opts.aclUsers ?? []).map((u) => aclFileLine(u.name, u.rules, aclPasswordHash(u.password)))];
    writeFileSync(aclFile, `${lines.join('\n')}\n`, { mode: 0o600 });
    auth.push('--aclfile', aclFile);
  }
  const probeOptions: RedisOptions = {
    port,
    host: '127.0.0.1',
    ...(opts.password !== undefined ? { password: opts.password } : {}),
    // NOTE: the probe checks the chain but not the host name (certificateHosts may name another)
    ...(tls ? { tls: { ca: [readFileSync(tls.caFile, 'utf8')], rejectUnauthorized: true, checkServerIdentity: () => undefined } } : {}),
  };

  async function start(): Promise<void> {
    // NOTE: append-only file fsync'd on every write: tenants and flags survive the restart.
    child = spawn('redis-server', [...listen, ...auth, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], {
      stdio: 'ignore',
    });
    const c = child;
    await eventually(
      async () => {
        if (c.exitCode !== null) throw new GiveUp(`private redis-server exited at start (code ${c.exitCode}): check its arguments and ACL file`);
        const probe = new Redis({ ...probeOptions, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } finally {
          probe.disconnect();
        }
      },
      15_000,
      'the private redis-server to start (is redis-server installed?)',
      100,
    );
  }

  async function stop(): Promise<void> {
    const c = child;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    await exited;
  }

  await start();
  return {
    url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`,
    port,
    ...(tls ? { caFile: tls.caFile } : {}),
    start,
    stop,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
