// The sink's stage, the last before ClickHouse in both runners: the registry of recent
// overwrites gets its say on every event (DESIGN.md §5 step 4) — `drop` for a suppressed user
// (counted, never accepted), the pending rewrite applied otherwise — and it fails closed with
// `retry` while the registry may be stale (a fleet sink that could not poll it lately).
import { retry } from '../core/result.js';
import type { OverwriteRegistry } from '../compactor/overwrite-registry.js';
import type { CleanEvent } from '../events/envelope.js';
import type { PipelineStage } from '../pipeline/pipeline.js';

export const SINK_STAGE = 'sink';

export function createSinkStage(registry: Pick<OverwriteRegistry, 'applyPending'>, fresh: () => boolean = () => true): PipelineStage<CleanEvent, CleanEvent> {
  return {
    name: SINK_STAGE,
    run: (event) => (fresh() ? registry.applyPending(event) : retry('overwrite registry not refreshed recently')),
  };
}
