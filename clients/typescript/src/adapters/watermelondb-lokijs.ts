// A WatermelonDB database over LokiJS in memory, for tests, the conformance kit's WatermelonDB
// driver and the benchmark: the same adapter a web app uses, without IndexedDB (Node has none, so
// LokiJS keeps the data in memory) and without autosave (nothing to save to, and a timer would keep
// Node running).

import { Database, Model, appSchema, tableSchema, type ColumnSchema } from '@nozbe/watermelondb';
import loki from '@nozbe/watermelondb/adapters/lokijs/index.js';
import log from '@nozbe/watermelondb/utils/common/logger/index.js';
import { fieldsyncColumns, fieldsyncModels, fieldsyncTables } from './watermelondb.js';

// WatermelonDB's modules are CommonJS with a `default` export: Node's ESM import gives the module.
const LokiJSAdapter = loki.default;
(log.default as unknown as { silence(): void }).silence();

/** The columns of a task, customer... as a small app might keep them (the rest goes to extras). */
export const exampleColumns: Record<string, ColumnSchema[]> = {
  tasks: [
    { name: 'claim_id', type: 'string', isOptional: true },
    { name: 'title', type: 'string', isOptional: true },
    { name: 'kind', type: 'string', isOptional: true },
    { name: 'status', type: 'string', isOptional: true },
    { name: 'assignee_id', type: 'string', isOptional: true },
    { name: 'checklist', type: 'string', isOptional: true },
    { name: 'completion_note', type: 'string', isOptional: true },
  ],
  customers: [
    { name: 'name', type: 'string', isOptional: true },
    { name: 'phone', type: 'string', isOptional: true },
    { name: 'address', type: 'string', isOptional: true },
  ],
  task_notes: [
    { name: 'task_id', type: 'string', isOptional: true },
    { name: 'body', type: 'string', isOptional: true },
  ],
  documents: [
    { name: 'claim_id', type: 'string', isOptional: true },
    { name: 'task_id', type: 'string', isOptional: true },
    { name: 'kind', type: 'string', isOptional: true },
    { name: 'file_name', type: 'string', isOptional: true },
    { name: 'content_type', type: 'string', isOptional: true },
    { name: 'size_bytes', type: 'number', isOptional: true },
    { name: 'sha256', type: 'string', isOptional: true },
    { name: 'status', type: 'string', isOptional: true },
  ],
  claims: [
    { name: 'status', type: 'string', isOptional: true },
    { name: 'customer_id', type: 'string', isOptional: true },
  ],
};

/** A fresh in-memory WatermelonDB database with the example tables and fieldsync's. */
export function memoryDatabase(columns: Record<string, ColumnSchema[]> = exampleColumns): Database {
  const tables = Object.entries(columns).map(([name, cols]) => tableSchema({ name, columns: [...cols, ...fieldsyncColumns] }));
  const models = Object.keys(columns).map((name) => class extends Model {
    static override table = name;
  });
  const adapter = new LokiJSAdapter({
    schema: appSchema({ version: 1, tables: [...tables, ...fieldsyncTables] }),
    useWebWorker: false,
    useIncrementalIndexedDB: true,
    extraLokiOptions: { autosave: false },
    dbName: `fieldsync-${Math.random().toString(36).slice(2)}`,
  });
  return new Database({ adapter, modelClasses: [...models, ...fieldsyncModels] });
}
