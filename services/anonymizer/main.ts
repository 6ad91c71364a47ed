// Entry point: `node dist/services/anonymizer/main.js` or `tracklane start anonymizer`.
import { runServiceMain } from '../fleet/running-service.js';
import { anonymizerConfigSchema, startAnonymizer } from './anonymizer-service.js';

runServiceMain('anonymizer', anonymizerConfigSchema, startAnonymizer);
