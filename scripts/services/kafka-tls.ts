// The test broker's SASL_SSL listener: a CA and a broker certificate made with the
// JDK's keytool (no openssl needed), and one SCRAM user whose credentials Kafka's StorageTool
// writes into the log dir before the broker opens. Tests connect through it with the CA file and
// the credentials read back from here; never used outside development, tests and CI.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { servicePath } from './paths.js';
import { runCommand, ServiceSetupError } from './process-control.js';

export const KAFKA_SASL_SSL_PORT = 9094;
export const SCRAM_USER = 'tracklane';
export const SCRAM_MECHANISM = 'scram-sha-512' as const;

const tlsDir = servicePath('kafka', 'tls');
const caStore = join(tlsDir, 'ca.p12');
export const kafkaCaFile = join(tlsDir, 'ca.pem');
export const brokerKeystore = join(tlsDir, 'broker.p12');
const storePasswordFile = join(tlsDir, 'store.password');
/** written with the log dir (`format --add-scram`): the credentials and the dir they belong to */
const scramFile = (dataDir: string) => join(dataDir, 'tracklane-scram.json');

export interface KafkaSecureEndpoint {
  brokers: string;
  caFile: string;
  mechanism: typeof SCRAM_MECHANISM;
  username: string;
  password: string;
}

const keytoolHint = 'install a Java 17+ JDK or JRE (keytool ships with it)';

async function keytool(args: string[]): Promise<void> {
  const { code, output } = await runCommand('keytool', args, { cwd: tlsDir, missingHint: keytoolHint });
  // NOTE: keytool echoes no secret (store passwords are passed with :file), so its output may be quoted
  if (code !== 0) throw new ServiceSetupError(`kafka: keytool ${args[0]} failed (exit ${code}): ${output.trim().slice(-500)}`);
}

/**
 * The CA and the broker's PKCS#12 keystore (certificate for IP 127.0.0.1 and localhost, signed by
 * the CA), made once and kept with the broker's files; `fresh` makes new ones.
 */
export async function ensureBrokerCertificates(fresh: boolean): Promise<{ keystore: string; storePassword: string }> {
  if (fresh) await rm(tlsDir, { recursive: true, force: true });
  if (existsSync(brokerKeystore) && existsSync(kafkaCaFile) && existsSync(storePasswordFile)) {
    return { keystore: brokerKeystore, storePassword: (await readFile(storePasswordFile, 'utf8')).trim() };
  }
  await rm(tlsDir, { recursive: true, force: true });
  await mkdir(tlsDir, { recursive: true, mode: 0o700 });
  const storePassword = randomBytes(18).toString('base64url');
  await writeFile(storePasswordFile, `${storePassword}\n`, { mode: 0o600 });
  const pass = ['-storepass:file', storePasswordFile];
  const validity = ['-validity', '3650'];
  await keytool(['-genkeypair', '-alias', 'ca', '-keyalg', 'EC', '-groupname', 'secp256r1', '-dname', 'CN=Tracklane test CA', '-ext', 'bc:c', ...validity, '-keystore', caStore, '-storetype', 'PKCS12', ...pass]);
  await keytool(['-exportcert', '-rfc', '-alias', 'ca', '-keystore', caStore, ...pass, '-file', kafkaCaFile]);
  await keytool(['-genkeypair', '-alias', 'broker', '-keyalg', 'EC', '-groupname', 'secp256r1', '-dname', 'CN=127.0.0.1', ...validity, '-keystore', brokerKeystore, '-storetype', 'PKCS12', ...pass]);
  await keytool(['-certreq', '-alias', 'broker', '-keystore', brokerKeystore, ...pass, '-file', join(tlsDir, 'broker.csr')]);
  // NOTE: clients verify the host name against the SAN (hostname verification stays on)
  await keytool(['-gencert', '-rfc', '-alias', 'ca', '-keystore', caStore, ...pass, '-infile', join(tlsDir, 'broker.csr'), '-outfile', join(tlsDir, 'broker.pem'), '-ext', 'SAN=IP:127.0.0.1,DNS:localhost', '-ext', 'KU=digitalSignature,keyAgreement', '-ext', 'EKU=serverAuth', ...validity]);
  await keytool(['-importcert', '-noprompt', '-alias', 'ca', '-file', kafkaCaFile, '-keystore', brokerKeystore, ...pass]);
  await keytool(['-importcert', '-noprompt', '-alias', 'broker', '-file', join(tlsDir, 'broker.pem'), '-keystore', brokerKeystore, ...pass]);
  return { keystore: brokerKeystore, storePassword };
}

/** A new SCRAM user's credentials and the StorageTool arguments that create it at format time. */
export function newScramUser(): { password: string; formatArgs: string[] } {
  const password = randomBytes(18).toString('base64url');
  // NOTE: both mechanisms, so a test can also connect with SCRAM-SHA-256
  const formatArgs = ['SCRAM-SHA-512', 'SCRAM-SHA-256'].flatMap((m) => ['--add-scram', `${m}=[name=${SCRAM_USER},password=${password}]`]);
  return { password, formatArgs };
}

export async function writeScramUser(dataDir: string, password: string): Promise<void> {
  await writeFile(scramFile(dataDir), `${JSON.stringify({ username: SCRAM_USER, password })}\n`, { mode: 0o600 });
}

/** Whether a log dir was formatted with our SCRAM user (dirs formatted before the listener existed were not). */
export function hasScramUser(dataDir: string): boolean {
  return existsSync(scramFile(dataDir));
}

/** How to reach the SASL_SSL listener of the broker our scripts started; a clear error when it has none. */
export async function kafkaSecureEndpoint(dataDir: string): Promise<KafkaSecureEndpoint> {
  const text = await readFile(scramFile(dataDir), 'utf8').catch(() => undefined);
  if (text === undefined || !existsSync(kafkaCaFile)) {
    throw new ServiceSetupError(
      'kafka: no SASL_SSL listener credentials under .services/kafka (the broker was not started by scripts/services, or before it had the listener): run `npm run services:down && npm run services:up`',
    );
  }
  const { username, password } = JSON.parse(text) as { username: string; password: string };
  return { brokers: `127.0.0.1:${KAFKA_SASL_SSL_PORT}`, caFile: kafkaCaFile, mechanism: SCRAM_MECHANISM, username, password };
}

/**
 * The broker's certificate and key (PKCS#12) for other test servers that need one signed by the
 * same test CA (the schema registry's TLS proxy in tests); made by the broker's start.
 */
export async function testServerCertificate(): Promise<{ pfx: Buffer; passphrase: string; caFile: string }> {
  if (!existsSync(brokerKeystore) || !existsSync(storePasswordFile)) {
    throw new ServiceSetupError('kafka: no test certificate under .services/kafka/tls (start the broker with scripts/services first)');
  }
  return { pfx: await readFile(brokerKeystore), passphrase: (await readFile(storePasswordFile, 'utf8')).trim(), caFile: kafkaCaFile };
}
