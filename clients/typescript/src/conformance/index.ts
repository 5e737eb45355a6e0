// @fieldsync/client/conformance: the scenarios every fieldsync client must pass, runnable against
// any server. A client under test plugs in through a Driver (driver.ts); defineConformanceTests
// registers one node:test test per scenario.

import { test } from 'node:test';
import type { Driver } from './driver.js';
import { envFromProcess, type ConformanceEnv } from './env.js';
import { closeScene, openScene, scenarios, type Scenario } from './scenarios.js';

export type { Device, Driver, Refusal } from './driver.js';
export { envFromProcess, type ConformanceEnv } from './env.js';
export { FlakyProxy } from './proxy.js';
export { check, jpeg, scenarios, type Scenario, type Scene } from './scenarios.js';
export { plainDriver } from './plain.js';

/** Runs one scenario with a fresh scene. */
export async function runScenario(driver: Driver, env: ConformanceEnv, scenario: Scenario): Promise<void> {
  const scene = await openScene(driver, env);
  try {
    await scenario.run(scene);
  } finally {
    await closeScene(scene);
  }
}

/**
 * Registers the scenarios as node:test tests for `driver`, against the server the environment
 * names (FIELDSYNC_URL...); skipped when it names none.
 */
export function defineConformanceTests(driver: Driver, env: ConformanceEnv | undefined = envFromProcess()): void {
  for (const s of scenarios) {
    test(`conformance (${driver.name}): ${s.name}`, { skip: env ? false : 'FIELDSYNC_URL is not set' }, () => runScenario(driver, env!, s));
  }
}
