// Entry point: `node dist/services/sink/main.js` or `tracklane start sink`.
import { runServiceMain } from '../fleet/running-service.js';
import { sinkConfigSchema, startSink } from './sink-service.js';

runServiceMain('sink', sinkConfigSchema, startSink);
