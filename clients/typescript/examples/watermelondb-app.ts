// What a WatermelonDB app writes to adopt fieldsync (every line but comments is counted by
// src/test/glue.test.ts; the app's schema lines it touched are marked in app-model.ts). The app
// keeps its database, models, queries and observers; its edits are ordinary WatermelonDB writes.
import { Database, appSchema } from '@nozbe/watermelondb';
import LokiJSAdapter from '@nozbe/watermelondb/adapters/lokijs/index.js'; // on a phone: SQLiteAdapter
import { Client } from '@fieldsync/client';
import { WatermelonStore, fieldsyncModels, fieldsyncTables, synchronize, syncOnLocalChanges } from '@fieldsync/client/watermelondb';
import { appModels, appTables } from './app-model.js';

const schema = appSchema({ version: 1, tables: [...appTables, ...fieldsyncTables] });
// (.default: Node's import of WatermelonDB's CommonJS build; with a bundler it is the class itself)
const adapter = new LokiJSAdapter.default({ schema, useWebWorker: false, useIncrementalIndexedDB: true });
export const database = new Database({ adapter, modelClasses: [...appModels, ...fieldsyncModels] });

const store = new WatermelonStore(database);
export const client = new Client({ url: 'https://fieldsync.example.com', store, platform: 'android', appVersion: '1.4.0' });
// Where the app called WatermelonDB's synchronize(): on open, on reconnect, on a push notification.
export const sync = () => synchronize({ store, client });
// Optional: every edit goes up as it is made, and the server's changes come down while open.
export const stopPushingEdits = syncOnLocalChanges({ store, client });
export const stayInSync = (signal: AbortSignal) => client.live({ signal });
