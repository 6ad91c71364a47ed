// The user's account link on chDB in process (the suite: sink-account-link-suite.ts).
import { useTestClickHouse } from '../support/chdb.js';
import { describeAccountLink } from './sink-account-link-suite.js';

const ch = useTestClickHouse();
describeAccountLink('chDB', () => ch().client);
