// The conformance driver of the plain client over a MemoryStore. A restart is a new Client over a
// new MemoryStore holding what the old one had stored, as a durable store would after a kill.

import { Client } from '../client.js';
import { MemoryStore } from '../memory-store.js';
import type { Device, Driver } from './driver.js';
import { clientSteps } from './steps.js';

export const plainDriver: Driver = {
  name: 'plain',
  async newDevice(url) {
    return plainDevice(url, new MemoryStore());
  },
};

function plainDevice(url: string, store: MemoryStore): Device {
  const client = new Client({ url, store, platform: 'android', deviceName: 'conformance', appVersion: '1.0.0' });
  return {
    ...clientSteps(client, store),
    async sync() {
      await client.sync();
    },
    get: (type, id) => client.get(type, id),
    async update(type, id, patch) {
      await client.update(type, id, patch);
    },
    create: (type, fields) => client.create(type, fields),
    pending: () => client.pendingCount(),
    async restart() {
      return plainDevice(url, new MemoryStore(store.snapshot()));
    },
    async close() {},
  };
}
