// The conformance kit's driver for the RxDB adapter: a device is an RxDB database (memory storage)
// with a Client over an RxdbStore, and each step is done as an RxDB app does it: edits, creates and
// reads are the app's collections, a sync is the adapter's synchronize(). A restart stops the
// replications and starts a new store and client over the same database, as after the app was killed.

import type { RxDatabase } from 'rxdb';
import { Client } from '../client.js';
import type { Device, Driver } from '../conformance/driver.js';
import { uuidv7 } from '../uuid.js';
import type { RecordType } from '../wire.js';
import { memoryRxDatabase } from './rxdb-memory.js';
import { rxdbStore, synchronize, type RxdbStore } from './rxdb.js';

export const rxdbDriver: Driver = {
  name: 'rxdb',
  async newDevice(url) {
    return rxdbDevice(url, await memoryRxDatabase());
  },
};

async function rxdbDevice(url: string, db: RxDatabase): Promise<Device> {
  const store: RxdbStore = await rxdbStore(db);
  const client = new Client({ url, store, platform: 'android', deviceName: 'conformance (rxdb)', appVersion: '1.0.0' });
  const collectionOf = (type: RecordType) => {
    const c = store.collection(type);
    if (!c) throw new Error(`rxdb driver: no collection for ${type}`);
    return c;
  };
  return {
    async login(login, password) {
      const u = await client.login(login, password);
      return { id: u.id, role: u.role };
    },
    async sync() {
      await synchronize({ store, client });
    },
    async get(type, id) {
      return (await store.get(type, id))?.fields;
    },
    ids: (type) => store.listIds(type),
    async update(type, id, patch) {
      const doc = await collectionOf(type).findOne(id).exec();
      if (!doc) throw new Error(`rxdb driver: no ${type} ${id}`);
      await doc.incrementalPatch(patch);
      await store.settle();
    },
    async create(type, fields) {
      const id = typeof fields.id === 'string' ? fields.id : uuidv7();
      await collectionOf(type).insert({ ...fields, id });
      await store.settle();
      return id;
    },
    async refused() {
      return (await client.rejected()).map((r) => ({ mutationId: r.mutation.id, entityId: r.mutation.entity_id, code: r.result.error?.code ?? '' }));
    },
    async pending() {
      await store.settle();
      return client.pendingCount();
    },
    async restart() {
      await store.close();
      return rxdbDevice(url, db);
    },
    async expireCursor() {
      await store.write({ cursor: 'expired-by-the-conformance-kit' });
    },
    async plant(type, fields) {
      await store.write({ put: [{ type, id: fields.id, version: fields.version, fields, pending: {} }] });
    },
    upload: (documentId, bytes, o) => client.upload(documentId, bytes, { ...o, retryDelays: [0, 200, 500, 1000, 1000, 2000, 2000] }),
    async close() {
      await store.close();
      await db.close();
    },
  };
}
