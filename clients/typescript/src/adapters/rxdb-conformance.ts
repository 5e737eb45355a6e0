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
import { clientSteps } from '../conformance/steps.js';

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
    ...clientSteps(client, store),
    async sync() {
      await synchronize({ store, client });
    },
    async get(type, id) {
      return (await store.get(type, id))?.fields;
    },
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
    async pending() {
      await store.settle();
      return client.pendingCount();
    },
    async restart() {
      await store.close();
      return rxdbDevice(url, db);
    },
    async close() {
      await store.close();
      await db.close();
    },
  };
}
