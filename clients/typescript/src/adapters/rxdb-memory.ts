// An RxDB database over RxDB's memory storage, with collections as a small app might define them,
// for tests, the conformance kit's RxDB driver and examples. Only `id` (the primary key, the server's
// UUID) and `version` matter to the adapter; the other fields are the server's, as it sends them.

import { createRxDatabase, type RxDatabase, type RxJsonSchema } from 'rxdb';
import { getRxStorageMemory } from 'rxdb/plugins/storage-memory';

/** A collection schema keyed by the server's id, with the fields the app declares. */
export function recordSchema(properties: Record<string, unknown> = {}): RxJsonSchema<Record<string, unknown>> {
  return {
    version: 0,
    primaryKey: 'id',
    type: 'object',
    properties: { id: { type: 'string', maxLength: 36 }, version: { type: 'number' }, ...properties },
    required: ['id'],
  } as unknown as RxJsonSchema<Record<string, unknown>>;
}

/** A fresh in-memory RxDB database with a collection per record type a rep syncs. */
export async function memoryRxDatabase(): Promise<RxDatabase> {
  const db = await createRxDatabase({ name: `fieldsync${Math.random().toString(36).slice(2)}`, storage: getRxStorageMemory(), multiInstance: false });
  const str = { type: ['string', 'null'] };
  await db.addCollections({
    tasks: { schema: recordSchema({ status: str, title: str, checklist: { type: 'array' }, completion_note: str, assignee_id: str }) },
    customers: { schema: recordSchema({ name: str, phone: str, address: str }) },
    claims: { schema: recordSchema({ status: str }) },
    task_notes: { schema: recordSchema({ task_id: str, body: str }) },
    documents: { schema: recordSchema({ claim_id: str, task_id: str, kind: str, status: str }) },
  });
  return db;
}
