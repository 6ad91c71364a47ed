// The round's values in the Join/Set tables the mutations read (mutation-sql.ts), so no PII is
// in any SQL text: loaded on every node, each through its own connection, checked there, and
// emptied as soon as the round is done (they hold the round's ids and keys on disk).
import { toNumber } from '../clickhouse/client.js';
import { safeErrorFields } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { VerificationError } from './compactor-errors.js';
import type { CompactorTarget } from './compactor-target.js';
import { DEAD_LETTER_HASHES, DELETE_KEYS, ERASE_KEYS, ID_JOIN, JOIN, KEYS, LOOKUP_TABLES, REPLACE_KEYS, REPLACED_REQUESTS, SUPPRESS_KEYS } from './mutation-sql.js';
import { deletesEvents, erasesRow, replacesId, suppresses, type Staged } from './round-plan.js';
import { str } from './row-parsers.js';

export interface LookupRows {
  table: string;
  values: Record<string, unknown>[];
}

/** rows per insert: one body per chunk keeps a large batch's memory bounded */
const INSERT_CHUNK = 50_000;

/**
 * Empties `truncate` and fills `tables` on every node, then checks every node holds exactly
 * those rows (a node that missed some would run a mutation on other keys, or leave clear ids:
 * fail closed). `of` names whose rows they are in the error ('batch', 'translation').
 * NOTE: the keys of each table are unique (one command per subject and round, one entry per
 * id), so the row counts are the number of rows sent.
 */
export async function fillLookupTables(target: CompactorTarget, tables: readonly LookupRows[], truncate: readonly string[], of: string): Promise<void> {
  const name = (t: string): string => t.replace(/^default\./, '');
  for (const node of target.nodes) {
    for (const t of truncate) await node.command({ query: `TRUNCATE TABLE ${t}` });
    for (const { table, values } of tables) {
      for (let i = 0; i < values.length; i += INSERT_CHUNK) await node.insert({ table: name(table), format: 'JSONEachRow', values: values.slice(i, i + INSERT_CHUNK) });
    }
  }
  const expected = new Map(tables.map(({ table, values }) => [name(table), values.length]));
  for (const [n, node] of target.nodes.entries()) {
    const held = await node.query({
      query: `SELECT name, total_rows FROM system.tables WHERE database = 'default' AND name IN {names:Array(String)}`,
      query_params: { names: [...expected.keys()] },
      format: 'JSONEachRow',
    });
    const counts = new Map((await held.json<Record<string, unknown>>()).map((r) => [str(r.name), toNumber(r.total_rows)]));
    for (const [table, rows] of expected) {
      if ((counts.get(table) ?? 0) !== rows) {
        throw new VerificationError(`node ${n + 1} of ${target.nodes.length} holds ${counts.get(table) ?? 0} rows of ${table}, not the ${of}'s ${rows}`);
      }
    }
  }
}

export interface LookupStaging {
  /** the round's Join entry and keys per subject, with its delete, erase and suppress keys */
  stage(plans: readonly Staged[]): Promise<void>;
  /** the hashes of the dead letters the round deletes */
  stageDeadLetters(hashes: readonly string[]): Promise<void>;
  /** the round's verified replacing requests, whose new ids leave replaced_ids */
  stageReplacedRequests(requestIds: readonly string[]): Promise<void>;
  /** empties every lookup table on every node; a failure is logged (the next round empties them) */
  clear(): Promise<void>;
}

export function createLookupStaging(target: CompactorTarget, log: Logger): LookupStaging {
  const fill = (tables: readonly LookupRows[], truncate: readonly string[]): Promise<void> => fillLookupTables(target, tables, truncate, 'batch');

  return {
    async stage(plans) {
      const key = (p: Staged): Record<string, unknown> => ({ subject: p.cmd.subject, tenant_id: p.cmd.tenant_id, id: p.cmd.id });
      const userKey = (p: Staged): Record<string, unknown> => ({ tenant_id: p.cmd.tenant_id, id: p.cmd.id });
      const entry = (p: Staged, id: string): Record<string, unknown> => ({ ...key(p), id, repl: p.rewrite.repl, drop_keys: p.rewrite.drop, requested_at: p.cmd.requested_at });
      // TRICKY: a replacing command's new id is staged as a key too, with the same entry, so a
      // retry rewrites (and verification reads) the history already moved to it. Its aliases
      // (the pseudonyms' commands) share the new id: staged once.
      const underNewIds = new Map<string, Record<string, unknown>>();
      for (const p of plans) if (replacesId(p.cmd)) underNewIds.set(`${p.cmd.tenant_id}\u0000${p.cmd.replacement_id}`, entry(p, p.cmd.replacement_id));
      const joined = [...plans.map((p) => entry(p, p.cmd.id)), ...underNewIds.values()];
      const tables: LookupRows[] = [
        { table: JOIN, values: joined },
        { table: KEYS, values: joined.map(({ subject, tenant_id, id }) => ({ subject, tenant_id, id })) },
        { table: DELETE_KEYS, values: plans.filter((p) => deletesEvents(p.cmd)).map(userKey) },
        { table: ERASE_KEYS, values: plans.filter((p) => erasesRow(p.cmd)).map(key) },
        { table: SUPPRESS_KEYS, values: plans.filter((p) => suppresses(p.cmd)).map(userKey) },
        {
          table: ID_JOIN,
          values: plans.flatMap((p) => (replacesId(p.cmd) ? [{ ...userKey(p), new_id: p.cmd.replacement_id, requested_at: p.cmd.requested_at }] : [])),
        },
        { table: REPLACE_KEYS, values: plans.filter((p) => replacesId(p.cmd)).map(userKey) },
      ];
      await fill(tables, [JOIN, KEYS, DELETE_KEYS, SUPPRESS_KEYS, ERASE_KEYS, ID_JOIN, REPLACE_KEYS]);
    },
    async stageDeadLetters(hashes) {
      await fill([{ table: DEAD_LETTER_HASHES, values: [...new Set(hashes)].map((h) => ({ h })) }], [DEAD_LETTER_HASHES]);
    },
    async stageReplacedRequests(requestIds) {
      await fill([{ table: REPLACED_REQUESTS, values: [...new Set(requestIds)].map((request_id) => ({ request_id })) }], [REPLACED_REQUESTS]);
    },
    async clear() {
      try {
        for (const node of target.nodes) for (const t of LOOKUP_TABLES) await node.command({ query: `TRUNCATE TABLE ${t}` });
      } catch (err) {
        log.warn({ ...safeErrorFields(err) }, 'could not empty the lookup tables (the next round does)');
      }
    },
  };
}
