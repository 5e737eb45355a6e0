// The WatermelonDB adapter against a real WatermelonDB database (LokiJS in memory): the Store it
// gives the client, and how the app's own edits become field-level outbox entries with the base
// version of the copy they were made on. The same adapter runs the conformance kit against a real
// server (internal/tsclient).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Q } from '@nozbe/watermelondb';
import { MetaKeys, type LocalRecord } from '../store.js';
import { memoryDatabase } from '../adapters/watermelondb-lokijs.js';
import { syncOnLocalChanges, WatermelonStore } from '../adapters/watermelondb.js';

const T1 = '01930000-0000-7000-8000-000000000001';
const C1 = '01930000-0000-7000-8000-0000000000c1';

function task(version: number, over: Record<string, unknown> = {}): LocalRecord {
  return {
    type: 'task',
    id: T1,
    version,
    pending: {},
    fields: {
      id: T1, version, claim_id: C1, title: 'Visit', kind: 'visit', status: 'assigned', assignee_id: 'u1',
      checklist: [{ key: 'photos', label: 'Photos', done: false }, { key: 'sign', label: 'Signature', done: false }],
      completion_note: null, due_at: '2026-12-01T10:00:00Z', ...over,
    },
  };
}

async function setup(role = 'rep') {
  const database = memoryDatabase();
  const store = new WatermelonStore(database);
  await store.write({ meta: { [MetaKeys.user]: JSON.stringify({ id: 'u1', role }) } });
  return { database, store };
}

async function appEdit(store: WatermelonStore, id: string, fn: (raw: Record<string, unknown>) => void) {
  const row = await store.database.get('tasks').find(id);
  await store.database.write(async () => {
    await row.update((r) => {
      const raw: Record<string, unknown> = {};
      fn(raw);
      for (const [k, v] of Object.entries(raw)) r._setRaw(k, v as string);
    });
  });
}

test('records round-trip through the app tables, JSON columns and extra fields included', async () => {
  const { store } = await setup();
  await store.write({ put: [task(5)], cursor: 'c1' });
  const got = await store.get('task', T1);
  assert.deepEqual(got, task(5));
  assert.equal(await store.cursor(), 'c1');
  assert.deepEqual(await store.listIds('task'), [T1]);
  // A type without a table of the app is kept whole.
  const user: LocalRecord = { type: 'user', id: 'u1', version: 3, fields: { id: 'u1', version: 3, name: 'Rep' }, pending: {} };
  await store.write({ put: [user] });
  assert.deepEqual(await store.get('user', 'u1'), user);
  assert.deepEqual(await store.listIds('user'), ['u1']);
  await store.write({ remove: [{ type: 'task', id: T1 }, { type: 'user', id: 'u1' }], cursor: null });
  assert.equal(await store.get('task', T1), undefined);
  assert.equal(await store.get('user', 'u1'), undefined);
  assert.equal(await store.cursor(), undefined);
});

test("an app's edit becomes one field-level update based on the copy it was made on", async () => {
  const { store } = await setup('rep');
  await store.write({ put: [task(5)] });
  await appEdit(store, T1, (r) => {
    r['status'] = 'completed';
    r['checklist'] = JSON.stringify([{ key: 'photos', label: 'Photos', done: true }, { key: 'sign', label: 'Signature', done: false }]);
  });
  // Before collection the client already sees the edit as pending, so a pull keeps it.
  assert.deepEqual((await store.get('task', T1))!.pending, { status: 5, checklist: 5 });
  // A pull moves the row to version 9 (a manager renamed it) before the edit is collected.
  await store.write({ put: [{ ...task(9, { title: 'Visit (urgent)' }), pending: { status: 5, checklist: 5 } }] });
  const mid = (await store.get('task', T1))!;
  assert.equal(mid.fields['title'], 'Visit (urgent)');
  assert.equal(mid.fields['status'], 'completed');

  assert.equal(await store.collectLocalChanges(), 1);
  const box = await store.outbox();
  assert.equal(box.length, 1);
  const m = box[0]!.mutation;
  assert.equal(m.op, 'update');
  assert.equal(m.base_version, 5, 'based on the copy the rep edited, not the one pulled since');
  assert.deepEqual(m.fields, { status: 'completed', checklist: [{ key: 'photos', done: true }] });
  const after = (await store.get('task', T1))!;
  assert.deepEqual(after.pending, { status: 5, 'checklist.photos': 5 });
  const raw = (await store.database.get('tasks').find(T1))._raw as unknown as Record<string, unknown>;
  assert.equal(raw['_status'], 'synced');
  assert.equal(await store.collectLocalChanges(), 0, 'nothing twice');
  assert.equal(await store.getMeta(MetaKeys.nextSeq), String(box[0]!.seq + 1));
});

test("the app's creates and deletes become create and delete mutations", async () => {
  const { store, database } = await setup('manager');
  await store.write({ put: [task(5)] });
  let made = '';
  await database.write(async () => {
    const rec = await database.get('customers').create((r) => {
      r._setRaw('name', 'Ada');
      r._setRaw('phone', '+49 30 1');
    });
    made = rec.id;
    const t = await database.get('tasks').find(T1);
    await t.markAsDeleted();
  });
  assert.match(made, /^[0-9a-f]{8}-[0-9a-f]{4}-7/, 'the app gets UUIDv7 ids');
  assert.equal(await store.collectLocalChanges(), 2);
  const ms = (await store.outbox()).map((e) => e.mutation);
  const create = ms.find((m) => m.op === 'create')!;
  assert.equal(create.entity_id, made);
  assert.deepEqual(create.fields, { name: 'Ada', phone: '+49 30 1' });
  const del = ms.find((m) => m.op === 'delete')!;
  assert.equal(del.entity_id, T1);
  assert.equal(del.base_version, 5);
  assert.deepEqual(await database.adapter.getDeletedRecords('tasks'), []);
  assert.equal((await database.get('tasks').query(Q.where('id', T1)).fetch()).length, 0);
});

test('a removal never loses an edit the app has not handed over yet', async () => {
  const { store } = await setup('rep');
  await store.write({ put: [task(5)] });
  await appEdit(store, T1, (r) => { r['completion_note'] = 'done'; });
  await store.write({ remove: [{ type: 'task', id: T1 }] });
  assert.equal(await store.get('task', T1), undefined);
  const box = await store.outbox();
  assert.equal(box.length, 1);
  assert.deepEqual(box[0]!.mutation.fields, { completion_note: 'done' });
  assert.equal(box[0]!.mutation.base_version, 5);
});

test('clear erases records, outbox, cursor and meta', async () => {
  const { store } = await setup();
  await store.write({ put: [task(5)], cursor: 'c', meta: { a: 'b' } });
  await appEdit(store, T1, (r) => { r['status'] = 'accepted'; });
  await store.collectLocalChanges();
  await store.clear();
  assert.deepEqual(await store.listIds('task'), []);
  assert.deepEqual(await store.outbox(), []);
  assert.equal(await store.cursor(), undefined);
  assert.equal(await store.getMeta('a'), undefined);
});

test('syncOnLocalChanges hands an edit over and runs a round; the client’s own writes run none', async () => {
  const { store } = await setup('rep');
  await store.write({ put: [task(5)] });
  let rounds = 0;
  const stop = syncOnLocalChanges({ store, client: { sync: async () => { rounds++; } }, debounceMs: 10 });
  try {
    await store.write({ put: [task(6)] });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(rounds, 0, 'a pulled record is no edit');
    await appEdit(store, T1, (r) => { r['status'] = 'accepted'; });
    for (let i = 0; i < 50 && rounds === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(rounds, 1);
    const box = await store.outbox();
    assert.equal(box.length, 1);
    assert.deepEqual(box[0]!.mutation.fields, { status: 'accepted' });
    assert.equal(box[0]!.mutation.base_version, 6);
  } finally {
    stop();
  }
});
