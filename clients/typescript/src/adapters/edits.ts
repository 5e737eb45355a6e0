// What the state-based adapters (WatermelonDB, RxDB) share: turning "this record was X, the app
// made it Y" into outbox entries the client pushes. Those databases keep the latest value of a
// record, not the steps; the adapters find what changed (WatermelonDB's _status/_changed columns,
// RxDB's assumedMasterState/newDocumentState) and hand it here as LocalEdits, with the version of
// the copy the edit was made on. Entries are made as the client makes its own (client.ts: a UUIDv7
// id, the next seq from MetaKeys.nextSeq, units named as fields.ts names them), so the client pushes
// them, applies their results and computes pending units the same way.

import { unitsOf } from '../fields.js';
import { MetaKeys, type LocalRecord, type OutboxEntry, type Store, type WriteBatch } from '../store.js';
import { uuidv7 } from '../uuid.js';
import type { Fields, Mutation, RecordType, WritableType } from '../wire.js';

/** One change the app made in its own database, found by an adapter. */
export interface LocalEdit {
  type: WritableType;
  id: string;
  op: 'create' | 'update' | 'delete';
  /** create: the record's fields; update: only what changed (fields.ts diff's `wire`). */
  fields?: Fields;
  /**
   * update/delete: the version of the copy the edit was made on; 0 when that copy is a record made
   * here whose create is not answered yet (the client fills it in before the push).
   */
  baseVersion?: number;
}

/** Types a device may write: `user` is read-only (docs/protocol.md §3). */
export function isWritable(type: RecordType): type is WritableType {
  return type !== 'user';
}

/** The fields a create sends: what the app set, without the server's bookkeeping or nulls. */
export function createFields(record: Fields): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(record)) {
    if (k === 'id' || k === 'version' || v === undefined || v === null) continue;
    out[k] = v;
  }
  return out;
}

/**
 * Adds the edits to a write batch: one outbox entry each (a new mutation id, the next seq, the
 * time now), with the units they touch marked pending on `records` (the edited records' local
 * copies, by keyOf; earliest base wins, as client.ts keeps it). Returns the next seq, also set in
 * the batch's meta.
 */
export function addEdits(batch: WriteBatch, edits: LocalEdit[], records: Map<string, LocalRecord>, nextSeq: number, role: string | undefined): number {
  const now = new Date().toISOString();
  const entries: OutboxEntry[] = [];
  for (const e of edits) {
    const m: Mutation = { id: uuidv7(), type: e.type, op: e.op, entity_id: e.id, client_time: now };
    if (e.op !== 'create') m.base_version = e.baseVersion ?? 0;
    if (e.op !== 'delete') m.fields = e.fields ?? {};
    entries.push({ seq: nextSeq++, mutation: m });
    const rec = records.get(keyOf(e.type, e.id));
    if (rec && e.op !== 'delete') {
      for (const u of unitsOf(e.type, m.fields, role)) if (!(u in rec.pending)) rec.pending[u] = m.base_version ?? 0;
    }
  }
  batch.outboxPut = [...(batch.outboxPut ?? []), ...entries];
  batch.meta = { ...(batch.meta ?? {}), [MetaKeys.nextSeq]: String(nextSeq) };
  return nextSeq;
}

/** The outbox's next seq: the stored counter, never below what the outbox already holds. */
export async function nextSeqOf(store: Store): Promise<number> {
  const stored = Number((await store.getMeta(MetaKeys.nextSeq)) ?? '1') || 1;
  const box = await store.outbox();
  const last = box.length > 0 ? box[box.length - 1]!.seq + 1 : 1;
  return Math.max(stored, last);
}

/** The signed-in user's role, from the meta the client keeps (undefined before a login). */
export async function roleOf(store: Store): Promise<string | undefined> {
  const raw = await store.getMeta(MetaKeys.user);
  if (!raw) return undefined;
  try {
    return (JSON.parse(raw) as { role?: string }).role;
  } catch {
    return undefined;
  }
}

export function keyOf(type: string, id: string): string {
  return `${type}:${id}`;
}

/** The pending units of a record from its entries in the outbox, earliest base first (client.ts). */
export function pendingOf(entries: OutboxEntry[], role: string | undefined): Record<string, number> {
  const pending: Record<string, number> = {};
  for (const e of entries) {
    const m = e.mutation;
    for (const u of unitsOf(m.type, m.fields, role)) if (!(u in pending)) pending[u] = m.base_version ?? 0;
  }
  return pending;
}
