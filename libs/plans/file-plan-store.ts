// The embedded runner's plan store: plans in memory, persisted as one JSON file under the data
// dir (`tracking-plans.json`), each change written atomically like the tenant store's file.
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { writeFileAtomic } from '../tenants/file-tenant-store.js';
import { storedPlanSchema } from './plan-schema.js';
import { createMemoryPlanStore, type PlanSnapshot, type PlanStore } from './plan-store.js';

export const PLAN_FILE_VERSION = 1;

const planFileSchema = z.object({
  version: z.literal(PLAN_FILE_VERSION),
  plans: z.record(z.string(), storedPlanSchema),
  versions: z.record(z.string(), z.number().int().min(0)),
});

export class PlanFileError extends Error {
  override readonly name = 'PlanFileError';
}

/**
 * Opens the store at `path` (a missing file is an empty store). A corrupt file rejects naming
 * the file and the problem's place — never a silent reset, which would switch tenants' plans off.
 */
export async function openFilePlanStore(path: string): Promise<PlanStore> {
  const snapshot = await readPlanFile(path);
  return createMemoryPlanStore(snapshot, (next) => writeFileAtomic(path, serialize(next)));
}

async function readPlanFile(path: string): Promise<PlanSnapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return { plans: {}, versions: {} };
    throw new PlanFileError(`cannot read tracking plans ${path}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new PlanFileError(`tracking plans ${path} are corrupt: not valid JSON (fix or restore the file; it is not reset automatically)`);
  }
  const parsed = planFileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PlanFileError(`tracking plans ${path} are corrupt: ${issues}`);
  }
  return { plans: parsed.data.plans, versions: parsed.data.versions };
}

function serialize(s: PlanSnapshot): string {
  return `${JSON.stringify({ version: PLAN_FILE_VERSION, ...s }, null, 2)}\n`;
}
