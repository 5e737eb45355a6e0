// The conformance kit run for the WatermelonDB adapter (LokiJS in memory), against the server the
// environment names (internal/tsclient starts one).
import { watermelonDriver } from '../adapters/watermelondb-conformance.js';
import { defineConformanceTests } from '../conformance/index.js';

defineConformanceTests(watermelonDriver);
