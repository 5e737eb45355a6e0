// The conformance driver of the plain client over a MemoryStore. A restart is a new Client over a
// new MemoryStore holding what the old one had stored, as a durable store would after a kill.

import { Client } from '../client.js';
import { MemoryStore } from '../memory-store.js';
import type { Device, Driver } from './driver.js';

export const plainDriver: Driver = {
  name: 'plain',
  async newDevice(url) {
    return plainDevice(url, new MemoryStore());
  },
};

function plainDevice(url: string, store: MemoryStore): Device {
  const client = new Client({ url, store, platform: 'android', deviceName: 'conformance', appVersion: '1.0.0' });
  return {
    async login(login, password) {
      const u = await client.login(login, password);
      return { id: u.id, role: u.role };
    },
    async sync() {
      await client.sync();
    },
    get: (type, id) => client.get(type, id),
    ids: (type) => store.listIds(type),
    async update(type, id, patch) {
      await client.update(type, id, patch);
    },
    create: (type, fields) => client.create(type, fields),
    async refused() {
      return (await client.rejected()).map((r) => ({ mutationId: r.mutation.id, entityId: r.mutation.entity_id, code: r.result.error?.code ?? '' }));
    },
    pending: () => client.pendingCount(),
    async restart() {
      return plainDevice(url, new MemoryStore(store.snapshot()));
    },
    async expireCursor() {
      await store.write({ cursor: 'expired-by-the-conformance-kit' });
    },
    async plant(type, fields) {
      await store.write({ put: [{ type, id: fields.id, version: fields.version, fields, pending: {} }] });
    },
    upload: (documentId, bytes, o) => client.upload(documentId, bytes, { ...o, retryDelays: [0, 200, 500, 1000, 1000, 2000, 2000] }),
    async close() {},
  };
}
