// The RxDB adapter: the client's Store over the app's own RxDB database (any RxStorage), with one
// RxDB replication per collection. The app keeps its collections, queries and observers; fieldsync
// owns the sync loop.
//
// RxDB replicates a collection through a pull handler and a push handler. Here neither talks to the
// server:
// - push: RxDB hands each local write as {assumedMasterState, newDocumentState}; the handler turns
//   it into a field-level mutation in the client's durable outbox (the fields that differ, a rep's
//   checklist item by item), based on the assumed master's version: the copy the edit was made on.
//   The client pushes the outbox later, in order, with its retries; no whole document ever goes up.
// - pull: ONE shared pull for every collection, the client's (one cursor, pages applied in order,
//   410 → resnapshot). Its writes reach a collection as documents handed to that collection's
//   replication (a RESYNC served from a buffer), so RxDB knows them as the master's state and never
//   pushes them back.
// The outbox, cursor, meta values, pending units and the records of types the app keeps no
// collection for live in collections the adapter adds itself (fieldsync_*).

import { Subject } from 'rxjs';
import type { RxCollection, RxDatabase, RxJsonSchema } from 'rxdb';
import { replicateRxCollection, type RxReplicationState } from 'rxdb/plugins/replication';
import { diff, overlay } from '../fields.js';
import { type LocalRecord, type OutboxEntry, type Store, type WriteBatch } from '../store.js';
import type { Fields, RecordType } from '../wire.js';
import { addEdits, createFields, isWritable, keyOf, nextSeqOf, pendingOf, roleOf, type LocalEdit } from './edits.js';

const allTypes: RecordType[] = ['user', 'customer', 'claim', 'task', 'task_note', 'document', 'notification'];

/** The collection of each type when the app does not name its own: the type, plural. */
export const defaultCollections: Record<RecordType, string> = {
  user: 'users',
  customer: 'customers',
  claim: 'claims',
  task: 'tasks',
  task_note: 'task_notes',
  document: 'documents',
  notification: 'notifications',
};

const cursorKey = 'fieldsync.cursor';

const keyed = (key: string, props: Record<string, unknown>): RxJsonSchema<Record<string, unknown>> =>
  ({
    version: 0,
    primaryKey: key,
    type: 'object',
    properties: { [key]: { type: 'string', maxLength: 200 }, ...props },
    required: [key],
  }) as unknown as RxJsonSchema<Record<string, unknown>>;

/** The adapter's own collections, added to the app's database by rxdbStore(). */
const ownCollections = {
  fieldsync_outbox: { schema: { ...keyed('id', { seq: { type: 'number', minimum: 0, maximum: 1e15, multipleOf: 1 }, body: { type: 'string' } }), indexes: ['seq'] } },
  fieldsync_meta: { schema: keyed('key', { value: { type: 'string' } }) },
  // Pending units of the app's records, and whole records of types without a collection of the app.
  fieldsync_records: { schema: keyed('key', { type: { type: 'string' }, body: { type: 'string' } }) },
};

type Doc = Fields & { id: string; _deleted?: boolean };

interface PushRow {
  assumedMasterState?: Doc;
  newDocumentState: Doc;
}

/** One collection's replication, its buffer of master states to hand down, and who waits on them. */
interface Lane {
  type: RecordType;
  collection: RxCollection;
  replication: RxReplicationState<Doc, { n: number }>;
  stream: Subject<'RESYNC'>;
  buffer: Doc[];
  /** Tickets of the writes handed down so far. */
  served: number;
  waiters: { ticket: number; resolve: () => void }[];
  ticket: number;
}

export interface RxdbStoreOptions {
  /** The app's collection for each type it keeps (default: defaultCollections, those that exist). */
  collections?: Partial<Record<RecordType, string>>;
}

/** Strips RxDB's own fields from a document. */
function plain(d: Record<string, unknown>): Doc {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(d)) if (k !== '_meta' && k !== '_rev' && k !== '_attachments' && k !== '_deleted') out[k] = v;
  return out as Doc;
}

/**
 * Adds the adapter's collections to `db` and starts one replication per collection of the app.
 * Call it once, after the app's addCollections.
 */
export async function rxdbStore(db: RxDatabase, options: RxdbStoreOptions = {}): Promise<RxdbStore> {
  const missing = Object.fromEntries(Object.entries(ownCollections).filter(([name]) => !db.collections[name]));
  if (Object.keys(missing).length > 0) await db.addCollections(missing as never);
  const store = new RxdbStore(db, options);
  await store.start();
  return store;
}

export class RxdbStore implements Store {
  private readonly lanes = new Map<RecordType, Lane>();
  /** The last server copy handed down per record (keyOf): what a push of a record the pull could
   * not update (it had an unpushed local write) is corrected to. */
  private readonly latest = new Map<string, Fields>();

  constructor(
    readonly db: RxDatabase,
    private readonly options: RxdbStoreOptions,
  ) {}

  private get outboxCol(): RxCollection {
    return this.db.collections['fieldsync_outbox']!;
  }
  private get metaCol(): RxCollection {
    return this.db.collections['fieldsync_meta']!;
  }
  private get recordsCol(): RxCollection {
    return this.db.collections['fieldsync_records']!;
  }

  /** Starts the replications (rxdbStore does). */
  async start(): Promise<void> {
    for (const type of allTypes) {
      const name = this.options.collections?.[type] ?? defaultCollections[type];
      const collection = this.db.collections[name];
      if (!collection) {
        if (this.options.collections?.[type]) throw new Error(`fieldsync: collection ${name} (for ${type}) is not in the database`);
        continue;
      }
      if (collection.schema.primaryPath !== 'id') throw new Error(`fieldsync: collection ${name} must have the primary key "id"`);
      const stream = new Subject<'RESYNC'>();
      const lane = { type, collection, stream, buffer: [], served: 0, waiters: [], ticket: 0 } as unknown as Lane;
      lane.replication = replicateRxCollection<Doc, { n: number }>({
        collection: collection as unknown as RxCollection<Doc>,
        replicationIdentifier: `fieldsync-${type}`,
        live: true,
        waitForLeadership: false,
        autoStart: true,
        retryTime: 1000,
        toggleOnDocumentVisible: false,
        pull: {
          batchSize: 1000,
          stream$: stream.asObservable(),
          handler: async (_checkpoint, batchSize) => this.serve(lane, batchSize) as never,
        },
        push: {
          batchSize: 100,
          handler: async (rows) => (await this.onPush(type, rows as unknown as PushRow[])) as never,
        },
      });
      lane.replication.error$.subscribe((e) => this.onError?.(e));
      this.lanes.set(type, lane);
    }
    await Promise.all([...this.lanes.values()].map((l) => l.replication.awaitInitialReplication()));
  }

  /** Called with the replications' errors (a push handler that failed is tried again by RxDB). */
  onError?: (e: unknown) => void;

  /** Stops the replications (the app's database stays open). */
  async close(): Promise<void> {
    await Promise.all([...this.lanes.values()].map((l) => l.replication.cancel()));
  }

  /**
   * Waits until every local write so far has gone through its push handler into the outbox (RxDB
   * runs them shortly after each write; synchronize() waits for them before a round).
   */
  async settle(): Promise<void> {
    await Promise.all([...this.lanes.values()].map((l) => l.replication.awaitInSync()));
  }

  /** The app's collection of a type, or undefined when the adapter keeps the type itself. */
  collection(type: RecordType): RxCollection | undefined {
    return this.lanes.get(type)?.collection;
  }

  /** The pull handler: what the shared pull handed to this collection since it last asked. */
  private serve(lane: Lane, batchSize: number): { documents: Doc[]; checkpoint: { n: number } } {
    const documents = lane.buffer.splice(0, batchSize);
    if (lane.buffer.length === 0) {
      lane.served = lane.ticket;
      const ready = lane.waiters.filter((w) => w.ticket <= lane.served);
      lane.waiters = lane.waiters.filter((w) => w.ticket > lane.served);
      // Resolved after RxDB has the documents: it persists them before this RESYNC ends.
      queueMicrotask(() => ready.forEach((w) => w.resolve()));
    }
    return { documents, checkpoint: { n: lane.ticket } };
  }

  /** Hands master states to a collection and waits until RxDB has written them. */
  private async handDown(lane: Lane, docs: Doc[]): Promise<void> {
    if (docs.length === 0) return;
    lane.buffer.push(...docs);
    const ticket = ++lane.ticket;
    const served = new Promise<void>((resolve) => lane.waiters.push({ ticket, resolve }));
    lane.stream.next('RESYNC');
    await served;
    await lane.replication.awaitInSync();
  }

  /** The push handler: local writes to the outbox, field by field. Returns no conflicts but for
   * records the pull moved on meanwhile: those get the server's copy with the local edits over it. */
  private async onPush(type: RecordType, rows: PushRow[]): Promise<Doc[]> {
    if (!isWritable(type)) return [];
    const role = await roleOf(this);
    const edits: LocalEdit[] = [];
    for (const row of rows) {
      const now = plain(row.newDocumentState);
      const was = row.assumedMasterState && !row.assumedMasterState._deleted ? plain(row.assumedMasterState) : undefined;
      if (!was) {
        if (!row.newDocumentState._deleted) edits.push({ type, id: now.id, op: 'create', fields: createFields(now) });
      } else if (row.newDocumentState._deleted) {
        edits.push({ type, id: now.id, op: 'delete', baseVersion: Number(was.version) || 0 });
      } else {
        const d = diff(type, was, now, role);
        if (d.units.length > 0) edits.push({ type, id: now.id, op: 'update', baseVersion: Number(was.version) || 0, fields: d.wire });
      }
    }
    if (edits.length === 0) return [];
    const batch: WriteBatch = {};
    addEdits(batch, edits, new Map(), await nextSeqOf(this), role);
    const box = [...(await this.outbox()), ...(batch.outboxPut ?? [])];
    const conflicts: Doc[] = [];
    const pendingPut: { key: string; type: string; body: string }[] = [];
    for (const row of rows) {
      const now = plain(row.newDocumentState);
      const key = keyOf(type, now.id);
      const pending = pendingOf(box.filter((e) => !e.rejected && keyOf(e.mutation.type, e.mutation.entity_id) === key), role);
      pendingPut.push({ key: `pending:${key}`, type, body: JSON.stringify(pending) });
      const latest = this.latest.get(key);
      const was = row.assumedMasterState;
      if (latest && !row.newDocumentState._deleted && Number(latest['version']) > Number(was?.['version'] ?? 0)) {
        conflicts.push({ ...(overlay(latest, now, pending) as Doc), _deleted: false });
      }
    }
    await this.recordsCol.bulkUpsert(pendingPut);
    await this.writeOwn({ outboxPut: batch.outboxPut, meta: batch.meta });
    return conflicts;
  }

  private async pendingOf(type: RecordType, ids: string[]): Promise<Map<string, Record<string, number>>> {
    const docs = await this.recordsCol.findByIds(ids.map((id) => `pending:${keyOf(type, id)}`)).exec();
    const out = new Map<string, Record<string, number>>();
    for (const [k, d] of docs) out.set(k.slice('pending:'.length + type.length + 1), JSON.parse(String(d.get('body'))) as Record<string, number>);
    return out;
  }

  async get(type: RecordType, id: string): Promise<LocalRecord | undefined> {
    return (await this.getMany(type, [id]))[0];
  }

  async getMany(type: RecordType, ids: string[]): Promise<LocalRecord[]> {
    if (ids.length === 0) return [];
    const lane = this.lanes.get(type);
    if (!lane) {
      const docs = await this.recordsCol.findByIds(ids.map((id) => keyOf(type, id))).exec();
      return [...docs.values()].map((d) => JSON.parse(String(d.get('body'))) as LocalRecord);
    }
    const docs = await lane.collection.findByIds(ids).exec();
    const pending = await this.pendingOf(type, [...docs.keys()]);
    return [...docs.values()].map((d) => {
      const fields = plain(d.toJSON() as Record<string, unknown>);
      return { type, id: fields.id, version: Number(fields['version'] ?? 0) || 0, fields, pending: { ...(pending.get(fields.id) ?? {}) } };
    });
  }

  async list(type: RecordType): Promise<LocalRecord[]> {
    return this.getMany(type, await this.listIds(type));
  }

  async listIds(type: RecordType): Promise<string[]> {
    const lane = this.lanes.get(type);
    if (!lane) {
      const docs = await this.recordsCol.find({ selector: { type } }).exec();
      return docs.filter((d) => !String(d.get('key')).startsWith('pending:')).map((d) => (JSON.parse(String(d.get('body'))) as LocalRecord).id);
    }
    return (await lane.collection.find().exec()).map((d) => String(d.primary));
  }

  async outbox(): Promise<OutboxEntry[]> {
    const docs = await this.outboxCol.find({ sort: [{ seq: 'asc' }] }).exec();
    return docs.map((d) => JSON.parse(String(d.get('body'))) as OutboxEntry);
  }

  async cursor(): Promise<string | undefined> {
    return this.getMeta(cursorKey);
  }

  async getMeta(key: string): Promise<string | undefined> {
    const d = await this.metaCol.findOne(key).exec();
    return d ? String(d.get('value')) : undefined;
  }

  /**
   * Applies a batch in the order the Store contract asks of a store without transactions across
   * collections: records (handed down through the replications), removals, outbox, meta, cursor.
   */
  async write(batch: WriteBatch): Promise<void> {
    const byType = new Map<RecordType, { put: LocalRecord[]; remove: string[] }>();
    const of = (t: RecordType) => byType.get(t) ?? byType.set(t, { put: [], remove: [] }).get(t)!;
    for (const r of batch.put ?? []) of(r.type).put.push(r);
    for (const k of batch.remove ?? []) of(k.type).remove.push(k.id);
    for (const [type, { put, remove }] of byType) {
      const lane = this.lanes.get(type);
      if (!lane) {
        if (put.length) await this.recordsCol.bulkUpsert(put.map((r) => ({ key: keyOf(type, r.id), type, body: JSON.stringify(r) })));
        if (remove.length) await this.recordsCol.bulkRemove(remove.map((id) => keyOf(type, id)));
        continue;
      }
      const removing = new Set(remove);
      const existing = remove.length ? await lane.collection.findByIds(remove).exec() : new Map();
      const docs: Doc[] = [];
      for (const r of put) {
        if (removing.has(r.id)) continue;
        this.latest.set(keyOf(type, r.id), r.fields);
        docs.push({ ...r.fields, id: r.id, version: r.version, _deleted: false });
      }
      for (const id of remove) {
        this.latest.delete(keyOf(type, id));
        const d = existing.get(id);
        if (d) docs.push({ ...plain(d.toJSON() as Record<string, unknown>), _deleted: true });
      }
      await this.handDown(lane, docs);
      const pend = put.filter((r) => !removing.has(r.id)).map((r) => ({ key: `pending:${keyOf(type, r.id)}`, type, body: JSON.stringify(r.pending) }));
      if (pend.length) await this.recordsCol.bulkUpsert(pend);
      if (remove.length) await this.recordsCol.bulkRemove(remove.map((id) => `pending:${keyOf(type, id)}`));
    }
    await this.writeOwn(batch);
  }

  /** The outbox, meta and cursor parts of a batch. */
  private async writeOwn(batch: WriteBatch): Promise<void> {
    const removing = new Set(batch.outboxRemove ?? []);
    const put = (batch.outboxPut ?? []).filter((e) => !removing.has(e.mutation.id));
    if (put.length) await this.outboxCol.bulkUpsert(put.map((e) => ({ id: e.mutation.id, seq: e.seq, body: JSON.stringify(e) })));
    if (removing.size) await this.outboxCol.bulkRemove([...removing]);
    const meta: Record<string, string | undefined> = { ...(batch.meta ?? {}) };
    if (batch.cursor !== undefined) meta[cursorKey] = batch.cursor ?? undefined;
    const set = Object.entries(meta).filter(([, v]) => v !== undefined);
    const unset = Object.entries(meta).filter(([, v]) => v === undefined).map(([k]) => k);
    if (set.length) await this.metaCol.bulkUpsert(set.map(([key, value]) => ({ key, value })));
    if (unset.length) await this.metaCol.bulkRemove(unset);
  }

  async clear(): Promise<void> {
    for (const lane of this.lanes.values()) {
      const docs = await lane.collection.find().exec();
      await this.handDown(lane, docs.map((d) => ({ ...plain(d.toJSON() as Record<string, unknown>), _deleted: true })));
    }
    this.latest.clear();
    for (const c of [this.outboxCol, this.metaCol, this.recordsCol]) await c.find().remove();
  }
}

/**
 * One sync round for an RxDB app: the local writes RxDB has not handed to the push handlers yet go
 * into the outbox, then the client pushes the outbox and pulls until the server has nothing more,
 * every page reaching the collections through their replications.
 */
export async function synchronize<R>(o: { store: RxdbStore; client: { sync(o?: { signal?: AbortSignal }): Promise<R> }; signal?: AbortSignal }): Promise<R> {
  await o.store.settle();
  return o.client.sync({ signal: o.signal });
}
