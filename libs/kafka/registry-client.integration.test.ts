// The schema registry client with basic auth and HTTPS, through the test
// setup's TLS + basic-auth proxy in front of the real registry (Apicurio has no basic auth).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultClassifiers, DependencyError, describeStartupError } from '../../services/fleet/startup.js';
import { startRegistryProxy, type RegistryProxy } from '../../test/support/registry-proxy.js';
import { serviceEndpoints } from '../../test/support/services.js';
import { createRecordCodec } from './record-codec.js';
import { rawMinimal } from '../../test/support/record-fixtures.js';
import { createSchemaRegistry, registryClientOptions, registryTransportProblem } from './registry-client.js';
import { topicNames } from './topics.js';

let proxy: RegistryProxy;
beforeAll(async () => {
  proxy = await startRegistryProxy(serviceEndpoints().schemaRegistryUrl);
});
afterAll(async () => {
  await proxy?.close();
});

const settings = (over: Record<string, string | undefined> = {}) =>
  registryClientOptions({
    SCHEMA_REGISTRY_URL: proxy.url,
    SCHEMA_REGISTRY_USER: proxy.username,
    SCHEMA_REGISTRY_PASSWORD: proxy.password,
    SCHEMA_REGISTRY_PASSWORD_FILE: undefined,
    SCHEMA_REGISTRY_CA_FILE: proxy.caFile,
    ...over,
  });
const codecFor = (options: ReturnType<typeof settings>) => createRecordCodec({ registry: createSchemaRegistry(options), topics: topicNames(`reg-${randomUUID().slice(0, 8)}.`), registryUrl: proxy.url });

describe('schema registry over HTTPS with basic auth', () => {
  it('registers the schemas and round-trips a record with the right credentials and CA', async () => {
    const refusedBefore = proxy.refused();
    const codec = codecFor(settings());
    await codec.init();
    const event = { ...rawMinimal, event_id: `reg-${randomUUID()}` };
    expect(await codec.decodeRaw(codec.encodeRaw(event))).toMatchObject({ ok: true, value: { event_id: event.event_id } });
    expect(await registryTransportProblem(settings())).toBeUndefined();
    expect(proxy.refused()).toBe(refusedBefore);
  });

  it('a wrong password: refused (401) and the start-up line names the password setting, not its value', async () => {
    const wrong = `wrong-${randomUUID()}`;
    const options = settings({ SCHEMA_REGISTRY_PASSWORD: wrong });
    await expect(codecFor(options).init()).rejects.toThrow();
    const problem = await registryTransportProblem(options);
    expect(problem).toMatchObject({ status: 401 });
    const line = describeStartupError(new DependencyError('registry', problem), defaultClassifiers);
    expect(line).toContain('SCHEMA_REGISTRY_PASSWORD');
    expect(line).not.toContain(wrong);
  });

  it('no credentials at all are refused too', async () => {
    const options = settings({ SCHEMA_REGISTRY_USER: undefined, SCHEMA_REGISTRY_PASSWORD: undefined });
    expect(await registryTransportProblem(options)).toMatchObject({ status: 401 });
  });

  it("the system CAs instead of the test CA: the registry's certificate is not trusted, and the line names SCHEMA_REGISTRY_CA_FILE", async () => {
    const options = settings({ SCHEMA_REGISTRY_CA_FILE: undefined });
    await expect(codecFor(options).init()).rejects.toThrow();
    const problem = await registryTransportProblem(options);
    expect(problem).toMatchObject({ code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    expect(describeStartupError(new DependencyError('registry', problem), defaultClassifiers)).toContain('SCHEMA_REGISTRY_CA_FILE');
  });
});
