// What an RxDB app writes to adopt fieldsync (every line but comments is counted by
// src/test/glue.test.ts). The app keeps its database, collections and queries; its edits are
// ordinary RxDB writes. The adapter adds its own collections (fieldsync_*) and one replication per
// collection of the app, keyed by the server's `id`.
import { createRxDatabase } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory'; // the app's own storage
import { Client } from '@fieldsync/client';
import { rxdbStore, synchronize } from '@fieldsync/client/rxdb';
import { appCollections } from './rxdb-model.js';

export const db = await createRxDatabase({ name: 'app', storage: getRxStorageMemory() });
await db.addCollections(appCollections);

const store = await rxdbStore(db);
export const client = new Client({ url: 'https://fieldsync.example.com', store, platform: 'web', appVersion: '1.4.0' });
// On open, on reconnect, on a push notification; client.live() keeps it in sync while open.
export const sync = () => synchronize({ store, client });
export const stayInSync = (signal: AbortSignal) => client.live({ signal });
