// Entry point: `node dist/services/compactor/main.js` or `tracklane start compactor`.
import { runServiceMain } from '../fleet/running-service.js';
import { compactorConfigSchema, startCompactor } from './compactor-service.js';

runServiceMain('compactor', compactorConfigSchema, startCompactor);
