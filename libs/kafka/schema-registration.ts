// Registering a schema under a subject held at BACKWARD compatibility, on a Confluent-compatible
// registry (Apicurio's ccompat API included), safely from many replicas at once.
import { COMPATIBILITY, SchemaType, type SchemaRegistry } from '@kafkajs/confluent-schema-registry';

const RETRIES = 5;

/**
 * Registers `avsc` under `subject` (BACKWARD) and returns its id. Registering a schema the
 * subject already holds returns its existing id, so every replica may call this on start.
 * `registryUrl`, when given, lets it repair a subject a crashed replica left at NONE.
 */
export async function registerBackward(registry: Pick<SchemaRegistry, 'register'>, subject: string, avsc: object, registryUrl?: string): Promise<number> {
  const schema = { type: SchemaType.AVRO, schema: JSON.stringify(avsc) } as const;
  for (let attempt = 0; ; attempt++) {
    try {
      // NOTE: the client reads /config/{subject}: 404 (new subject) → it registers, then sets
      // BACKWARD; an existing subject must already be BACKWARD or it refuses.
      const { id } = await registry.register(schema, { subject, compatibility: COMPATIBILITY.BACKWARD });
      return id;
    } catch (err) {
      // TRICKY: Apicurio races two ways when replicas register a new subject at once: the
      // loser of the artifact creation gets 409 "already exists" (retrying finds the
      // schema), and a subject that exists without a rule reads as NONE (Confluent: 404),
      // i.e. between another replica's first registration and its PUT of BACKWARD — or
      // forever if that replica died in between, which we then repair ourselves. Any other
      // level was set on purpose: fail loudly.
      const lostCreateRace = httpStatus(err) === 409 && /already exists/i.test(errorText(err));
      const level = refusedLevel(err);
      if (!lostCreateRace && level !== 'NONE') throw err;
      if (attempt >= RETRIES) {
        if (lostCreateRace) throw err;
        throw new Error(
          `schema registry: subject ${subject} exists with compatibility NONE; set it to BACKWARD ` +
            `(PUT /config/${subject}) or give the codec registryUrl to repair it`,
        );
      }
      if (lostCreateRace || attempt < RETRIES - 1 || !registryUrl) {
        await sleep(50 * 2 ** attempt);
        continue;
      }
      await putBackward(registryUrl, subject);
    }
  }
}

/** The level the client refused to register under (its error says `(BACKWARD != NONE)`). */
function refusedLevel(err: unknown): string | undefined {
  // NOTE: the error class is not exported from the package root; its name is set though.
  if (!(err instanceof Error) || err.name !== 'ConfluentSchemaRegistryCompatibilityError') return undefined;
  return /!= ([A-Z_]+)\)/.exec(err.message)?.[1];
}

async function putBackward(baseUrl: string, subject: string): Promise<void> {
  const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/config/${encodeURIComponent(subject)}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ compatibility: COMPATIBILITY.BACKWARD }),
  });
  if (!res.ok) throw new Error(`schema registry: cannot set BACKWARD on ${subject}: HTTP ${res.status} ${await res.text()}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The HTTP status a registry client error carries, if any. */
export function httpStatus(err: unknown): number | undefined {
  return typeof err === 'object' && err !== null && 'status' in err && typeof err.status === 'number' ? err.status : undefined;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
