// Throwaway certificate authorities for TLS tests, made with the `openssl` CLI: a CA and a server
// certificate it signed for localhost / 127.0.0.1 (PEM files in a temporary directory).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  dir: string;
  /** the CA certificate (what a client trusts) */
  caFile: string;
  caPem: string;
  /** a server certificate signed by the CA, for DNS:localhost and IP:127.0.0.1 */
  certFile: string;
  certPem: string;
  keyFile: string;
  keyPem: string;
}

/** Whether the openssl CLI runs here (tests of TLS need it). */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A new CA and a server certificate it signed; `name` labels the CA's subject. */
export function makeTestCa(name: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'tracklane-ca-'));
  const f = (n: string) => join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost']);
  writeFileSync(
    f('server.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  run(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('server.ext')]);
  return {
    dir,
    caFile: f('ca.pem'),
    caPem: readFileSync(f('ca.pem'), 'utf8'),
    certFile: f('server.pem'),
    certPem: readFileSync(f('server.pem'), 'utf8'),
    keyFile: f('server.key'),
    keyPem: readFileSync(f('server.key'), 'utf8'),
  };
}
