// The conformance kit run for the plain client (the adapters run it for themselves).
import { defineConformanceTests, plainDriver } from '../conformance/index.js';

defineConformanceTests(plainDriver);
