// Entry point: `node dist/services/enricher/main.js` or `tracklane start enricher`.
import { runServiceMain } from '../fleet/running-service.js';
import { enricherConfigSchema, startEnricher } from './enricher-service.js';

runServiceMain('enricher', enricherConfigSchema, startEnricher);
