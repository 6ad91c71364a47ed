// The fleet collector's collection controls (issue 16): the day's cookieless salt and the
// per-user tracking preferences shared through Redis, on connections of their own (commands,
// and one for SUBSCRIBE). Tracking preferences key users by TRACKLANE_ID_HASH_KEY's hash: without
// that key there are none (no routes, no control), said once at start.
import type { Registry } from 'prom-client';
import { closeRedis, openRedis } from '../../libs/config/redis-connection.js';
import type { Logger } from '../../libs/core/logger.js';
import type { StopStep } from '../../libs/core/stop-stack.js';
import type { CollectionControl, CollectionControls, RequestAdmission } from '../../libs/collection/controls.js';
import { redisDailySalts } from '../../libs/collection/daily-ids.js';
import { openRedisTrackingPreferences } from '../../libs/collection/redis-tracking-preferences.js';
import { standardControls } from '../../libs/collection/standard-controls.js';
import type { TrackingPreferences } from '../../libs/collection/tracking-preferences.js';
import type { SubjectHash } from '../../libs/privacy/subject-hash.js';
import { fleetSubjectHash, type FleetConfig } from '../fleet/fleet-config.js';
import { startupStep, type StartupConfig } from '../fleet/startup.js';

export interface FleetCollection {
  collection: CollectionControls;
  /** absent without TRACKLANE_ID_HASH_KEY */
  preferences?: { preferences: TrackingPreferences; subjectHash: SubjectHash };
  stopSteps: StopStep[];
}

export async function openFleetCollection(
  config: FleetConfig & StartupConfig,
  logger: Logger,
  opts: { metrics: Registry; admission?: RequestAdmission; more?: readonly CollectionControl[] },
): Promise<FleetCollection> {
  const redis = openRedis(config, 'collection', { maxRetriesPerRequest: 1, commandTimeout: 1_000 });
  const stopSteps: StopStep[] = [{ name: 'redis-collection', run: () => closeRedis(redis) }];
  const salts = redisDailySalts(redis, config.TRACKLANE_REDIS_PREFIX);
  if (!config.TRACKLANE_ID_HASH_KEY) {
    logger.warn('TRACKLANE_ID_HASH_KEY is not set: per-user tracking preferences are off (no preferences routes)');
    return { collection: standardControls({ salts, preferences: { tracked: () => true }, ...opts }), stopSteps };
  }
  const subjectHash = fleetSubjectHash(config, 'collector');
  const subscriber = openRedis(config, 'collection-changes');
  stopSteps.unshift({ name: 'redis-collection-changes', run: () => closeRedis(subscriber) });
  const preferences = await startupStep(config, logger, 'collector', 'redis', () =>
    openRedisTrackingPreferences({ redis, subscriber, keyPrefix: config.TRACKLANE_REDIS_PREFIX, hash: subjectHash, logger }),
  );
  stopSteps.unshift({ name: 'tracking-preferences', run: () => preferences.close() });
  return {
    collection: standardControls({ salts, preferences, ...opts }),
    preferences: { preferences, subjectHash },
    stopSteps,
  };
}
