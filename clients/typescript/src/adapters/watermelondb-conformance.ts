// The conformance kit's driver for the WatermelonDB adapter: a device is a WatermelonDB database
// (LokiJS in memory) with a Client over a WatermelonStore, and each step is done as a WatermelonDB
// app does it: edits and creates are writes to the app's tables (WatermelonDB tracks them in
// _status/_changed), a sync is the adapter's synchronize(), reads are the app's rows. A restart is a
// new store and client over the same database, as after the app was killed.

import type { Database } from '@nozbe/watermelondb';
import { Client } from '../client.js';
import type { Device, Driver } from '../conformance/driver.js';
import type { Fields, RecordType } from '../wire.js';
import { memoryDatabase } from './watermelondb-lokijs.js';
import { synchronize, WatermelonStore } from './watermelondb.js';
import { clientSteps } from '../conformance/steps.js';

export const watermelonDriver: Driver = {
  name: 'watermelondb',
  async newDevice(url) {
    return watermelonDevice(url, memoryDatabase());
  },
};

/** A column's value as WatermelonDB keeps it: objects and arrays as JSON text (@json fields). */
function column(v: unknown): string | number | boolean | null {
  return v !== null && typeof v === 'object' ? JSON.stringify(v) : (v as string | number | boolean | null);
}

function watermelonDevice(url: string, database: Database): Device {
  const store = new WatermelonStore(database);
  const client = new Client({ url, store, platform: 'android', deviceName: 'conformance (watermelondb)', appVersion: '1.0.0' });

  /** The app's table of a type; every type a rep edits or creates has one here. */
  const tableOf = (type: RecordType) => {
    const t = store.table(type);
    if (!t) throw new Error(`watermelondb driver: no table for ${type}`);
    return t;
  };
  const setColumns = (rec: { _setRaw(k: string, v: unknown): void; collection: { schema: { columns: Record<string, unknown> } } }, fields: Fields) => {
    for (const [k, v] of Object.entries(fields)) {
      if (k === 'id') continue;
      if (!rec.collection.schema.columns[k]) throw new Error(`watermelondb driver: the app has no column ${k}`);
      rec._setRaw(k, column(v));
    }
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
      const row = await database.get(tableOf(type)).find(id);
      await database.write(async () => {
        await row.update((r) => setColumns(r as never, patch));
      });
      // The app hands its edit over at once (as synchronize() does first, even offline), so two
      // edits in a row stay two steps.
      await store.collectLocalChanges();
    },
    async create(type, fields) {
      let id = '';
      await database.write(async () => {
        const rec = await database.get(tableOf(type)).create((r) => {
          if (typeof fields.id === 'string') (r._raw as { id: string }).id = fields.id;
          setColumns(r as never, fields);
        });
        id = rec.id;
      });
      await store.collectLocalChanges();
      return id;
    },
    async pending() {
      await store.collectLocalChanges();
      return client.pendingCount();
    },
    async restart() {
      return watermelonDevice(url, database);
    },
    async close() {},
  };
}
