// Entry point: `node dist/services/collector/main.js` or `tracklane start collector`.
import { runServiceMain } from '../fleet/running-service.js';
import { collectorConfigSchema, startCollector } from './collector-service.js';

runServiceMain('collector', collectorConfigSchema, startCollector);
