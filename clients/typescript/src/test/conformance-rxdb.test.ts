// The conformance kit run for the RxDB adapter (memory storage), against the server the environment
// names (internal/tsclient starts one).
import { rxdbDriver } from '../adapters/rxdb-conformance.js';
import { defineConformanceTests } from '../conformance/index.js';

defineConformanceTests(rxdbDriver);
