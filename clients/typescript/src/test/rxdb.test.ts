// The RxDB adapter against a real RxDB database (memory storage): the Store it gives the client
// (writes reach the app's collections through their replications, so RxDB never pushes them back),
// and how the app's own writes become field-level outbox entries based on the copy they were made on.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetaKeys, type LocalRecord } from '../store.js';
import { memoryRxDatabase } from '../adapters/rxdb-memory.js';
import { rxdbStore } from '../adapters/rxdb.js';

const T1 = '01930000-0000-7000-8000-000000000001';

function task(version: number, over: Record<string, unknown> = {}): LocalRecord {
  return {
    type: 'task', id: T1, version, pending: {},
    fields: { id: T1, version, title: 'Visit', status: 'assigned', checklist: [{ key: 'photos', label: 'Photos', done: false }, { key: 'sign', label: 'Signature', done: false }], due_at: '2026-12-01T10:00:00Z', ...over },
  };
}

async function setup(role = 'rep') {
  const db = await memoryRxDatabase();
  const store = await rxdbStore(db);
  await store.write({ meta: { [MetaKeys.user]: JSON.stringify({ id: 'u1', role }) } });
  return { db, store, async done() { await store.close(); await db.close(); } };
}

async function settle(store: Awaited<ReturnType<typeof rxdbStore>>) {
  for (const t of ['task', 'customer'] as const) await (store as unknown as { lanes: Map<string, { replication: { awaitInSync(): Promise<unknown> } }> }).lanes.get(t)?.replication.awaitInSync();
}

test('records written by the client reach the app collection and are not pushed back', async () => {
  const s = await setup();
  try {
    await s.store.write({ put: [task(5)], cursor: 'c1' });
    assert.deepEqual(await s.store.get('task', T1), task(5));
    const doc = await s.db.collections['tasks']!.findOne(T1).exec();
    assert.equal(doc?.get('status'), 'assigned', 'the app sees it in its own collection');
    await settle(s.store);
    assert.deepEqual(await s.store.outbox(), [], 'a pulled record is not a local write');
    assert.equal(await s.store.cursor(), 'c1');
    const user: LocalRecord = { type: 'user', id: 'u1', version: 3, fields: { id: 'u1', version: 3, name: 'Rep' }, pending: {} };
    await s.store.write({ put: [user] });
    assert.deepEqual(await s.store.get('user', 'u1'), user);
    await s.store.write({ remove: [{ type: 'task', id: T1 }], cursor: null });
    assert.equal(await s.store.get('task', T1), undefined);
    assert.equal(await s.store.cursor(), undefined);
    await settle(s.store);
    assert.deepEqual(await s.store.outbox(), [], 'a pulled delete is not a local delete');
  } finally {
    await s.done();
  }
});

test("the app's write becomes one field-level update based on the assumed master's version", async () => {
  const s = await setup('rep');
  try {
    await s.store.write({ put: [task(5)] });
    const doc = (await s.db.collections['tasks']!.findOne(T1).exec())!;
    await doc.incrementalPatch({ status: 'completed', checklist: [{ key: 'photos', label: 'Photos', done: true }, { key: 'sign', label: 'Signature', done: false }] });
    await settle(s.store);
    const box = await s.store.outbox();
    assert.equal(box.length, 1);
    const m = box[0]!.mutation;
    assert.equal(m.op, 'update');
    assert.equal(m.base_version, 5);
    assert.deepEqual(m.fields, { status: 'completed', checklist: [{ key: 'photos', done: true }] });
    assert.deepEqual((await s.store.get('task', T1))!.pending, { status: 5, 'checklist.photos': 5 });
    // The app creates and deletes too.
    const c = await s.db.collections['customers']!.insert({ id: '01930000-0000-7000-8000-0000000000c2', name: 'Ada', phone: null });
    await c.remove();
    await settle(s.store);
    const ops = (await s.store.outbox()).map((e) => e.mutation.op);
    assert.deepEqual(ops.slice(0, 2), ['update', 'create']);
  } finally {
    await s.done();
  }
});
