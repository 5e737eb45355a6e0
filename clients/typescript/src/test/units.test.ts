// Tests of the client's parts that need no server: field diffs and views, the SSE parser, ids.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diff, overlay, parseSSE, uuidv7, MemoryStore } from '../index.js';

test('an edit sends only the fields that changed, a rep only the checklist items that changed', () => {
  const task = { id: 't', version: 5, title: 'Visit', completion_note: '', checklist: [{ key: 'a', label: 'A', done: false }, { key: 'b', label: 'B', done: true }] };
  const d = diff('task', task, { title: 'Visit', completion_note: 'ok', checklist: [{ key: 'a', label: 'A', done: true }, { key: 'b', label: 'B', done: true }] }, 'rep');
  assert.deepEqual(d.wire, { completion_note: 'ok', checklist: [{ key: 'a', done: true }] });
  assert.deepEqual(d.units.sort(), ['checklist.a', 'completion_note']);
  const m = diff('task', task, { checklist: [{ key: 'a', label: 'A2', done: false }] }, 'manager');
  assert.deepEqual(m.wire, { checklist: [{ key: 'a', label: 'A2', done: false }] });
});

test('a pulled record keeps the pending edits over the server fields, item by item', () => {
  const server = { id: 't', version: 9, title: 'New title', completion_note: '', checklist: [{ key: 'a', label: 'A', done: false }, { key: 'b', label: 'B', done: true }] };
  const local = { id: 't', version: 5, title: 'Old', completion_note: 'mine', checklist: [{ key: 'a', label: 'A', done: true }, { key: 'b', label: 'B', done: false }, { key: 'c', label: 'C', done: true }] };
  const v = overlay(server, local, { completion_note: 5, 'checklist.a': 5, 'checklist.c': 5 });
  assert.equal(v.title, 'New title');
  assert.equal(v.completion_note, 'mine');
  assert.deepEqual(v.checklist, [{ key: 'a', label: 'A', done: true }, { key: 'b', label: 'B', done: true }]);
});

test('the SSE parser reads events, ids, multi-line data and skips heartbeats', async () => {
  const text = ': heartbeat\n\nevent: ready\ndata: {"a":1}\n\nid: 7\nevent: sync\ndata: x\ndata: y\n\n';
  const chunks = [text.slice(0, 13), text.slice(13, 40), text.slice(40)];
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(new TextEncoder().encode(ch));
      c.close();
    },
  });
  const got = [];
  for await (const ev of parseSSE(body)) got.push(ev);
  assert.deepEqual(got, [{ event: 'ready', id: undefined, data: '{"a":1}' }, { event: 'sync', id: '7', data: 'x\ny' }]);
});

test('UUIDv7 ids are well formed and increase', () => {
  const ids = Array.from({ length: 1000 }, uuidv7);
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual([...ids].sort(), ids);
});

test('a MemoryStore restarted from its snapshot holds the same outbox, records and cursor', async () => {
  const s = new MemoryStore();
  await s.write({
    put: [{ type: 'task', id: 't', version: 3, fields: { id: 't' }, pending: { title: 3 } }],
    outboxPut: [{ seq: 2, mutation: { id: 'm2', type: 'task', op: 'update', entity_id: 't', base_version: 3, fields: { title: 'x' } } },
      { seq: 1, mutation: { id: 'm1', type: 'task', op: 'update', entity_id: 't', base_version: 3, fields: { title: 'y' } }, sent: true }],
    cursor: 'c1',
    meta: { k: 'v' },
  });
  const r = new MemoryStore(s.snapshot());
  assert.deepEqual((await r.outbox()).map((e) => e.mutation.id), ['m1', 'm2']);
  assert.equal(await r.cursor(), 'c1');
  assert.equal(await r.getMeta('k'), 'v');
  assert.deepEqual(await r.listIds('task'), ['t']);
});
