// The WatermelonDB adapter: the client's Store over the app's own WatermelonDB database (SQLite on
// a phone, LokiJS on the web and in Node), and a synchronize() the app calls where it would call
// WatermelonDB's. The app keeps its models, queries and observers; fieldsync owns the sync loop.
//
// WatermelonDB's own sync (synchronize() in @nozbe/watermelondb/sync) is not used: it pulls before
// it pushes, keeps a numeric timestamp for a cursor, sends whole records and takes a push as all or
// nothing, and has no outbox, so an edit is only "the record's current state". Here the app's edits,
// tracked by WatermelonDB in each row's _status/_changed columns, are turned into field-level
// mutations in the client's durable outbox (collectLocalChanges), each with the version of the copy
// the edit was made on; the client then pushes and pulls by the protocol's rules, and its writes come
// back here as batches applied in one WatermelonDB writer (one SQLite transaction).
//
// What the app adds to its schema: the `version` and `fieldsync` columns in each synced table
// (`...fieldsyncColumns`) and the adapter's three tables (`...fieldsyncTables`, models
// `...fieldsyncModels`). Types without a table of the app are kept whole in fieldsync_records.

import { Model, Q, tableSchema, type ColumnSchema, type Database, type TableSchema } from '@nozbe/watermelondb';
import randomId from '@nozbe/watermelondb/utils/common/randomId/index.js';
import { MetaKeys, type LocalRecord, type OutboxEntry, type Store, type WriteBatch } from '../store.js';
import type { Fields, RecordType } from '../wire.js';
import { diff } from '../fields.js';
import { uuidv7 } from '../uuid.js';
import { addEdits, createFields, isWritable, keyOf, nextSeqOf, pendingOf, roleOf, type LocalEdit } from './edits.js';

/** Every record type a pull brings, in the order a snapshot sends them. */
const allTypes: RecordType[] = ['user', 'customer', 'claim', 'task', 'task_note', 'document', 'notification'];

/** The table of each type when the app does not name its own: the type, plural. */
export const defaultTables: Record<RecordType, string> = {
  user: 'users',
  customer: 'customers',
  claim: 'claims',
  task: 'tasks',
  task_note: 'task_notes',
  document: 'documents',
  notification: 'notifications',
};

/** Columns each synced table adds: the server's version of the row, and the adapter's bookkeeping. */
export const fieldsyncColumns: ColumnSchema[] = [
  { name: 'version', type: 'number' },
  { name: 'fieldsync', type: 'string', isOptional: true },
];

/** Fields the server sends as JSON objects or arrays: kept as JSON text in a string column. */
export const defaultJsonFields: Partial<Record<RecordType, string[]>> = { task: ['checklist'], notification: ['data'] };

const outboxTable = 'fieldsync_outbox';
const metaTable = 'fieldsync_meta';
const recordsTable = 'fieldsync_records';
const cursorKey = 'fieldsync.cursor';

/** The adapter's own tables: the outbox, meta values and cursor, and records of unmapped types. */
export const fieldsyncTables: TableSchema[] = [
  tableSchema({ name: outboxTable, columns: [{ name: 'seq', type: 'number', isIndexed: true }, { name: 'body', type: 'string' }] }),
  tableSchema({ name: metaTable, columns: [{ name: 'value', type: 'string' }] }),
  tableSchema({ name: recordsTable, columns: [{ name: 'type', type: 'string', isIndexed: true }, { name: 'body', type: 'string' }] }),
];

class FieldsyncOutbox extends Model {
  static override table = outboxTable;
}
class FieldsyncMeta extends Model {
  static override table = metaTable;
}
class FieldsyncRecord extends Model {
  static override table = recordsTable;
}

/** The Model classes of fieldsyncTables, for the Database's modelClasses. */
export const fieldsyncModels = [FieldsyncOutbox, FieldsyncMeta, FieldsyncRecord];

/** The adapter's bookkeeping kept in a row's `fieldsync` column. */
interface RowState {
  /** LocalRecord.pending: fields in the outbox, not yet acknowledged, with their base versions. */
  p?: Record<string, number>;
  /** Base versions of edits WatermelonDB tracks (_changed) but not yet collected, taken when a
   * write moved the row's version under them. */
  l?: Record<string, number>;
  /** Server fields with no column in the app's table, kept so the record stays whole. */
  x?: Fields;
  /** Columns holding JSON text (objects and arrays: a checklist, a notification's data). */
  j?: string[];
  /** Those columns' values as the client last wrote them: what an app edit is diffed against
   * (a rep's checklist tick goes up as that item alone). */
  s?: Fields;
}

/** A prepared operation, made only when the batch runs: WatermelonDB wants prepared records
 * batched in the same tick they are prepared in. */
type Op = () => Model;

type Raw = Record<string, unknown> & { id: string; _status: string; _changed: string };

export interface WatermelonStoreOptions {
  /** The app's table for each type it keeps (default: defaultTables, for tables in the schema). */
  tables?: Partial<Record<RecordType, string>>;
  /** Columns the app keeps as JSON text (its @json fields), beyond defaultJsonFields. */
  json?: Partial<Record<RecordType, string[]>>;
}

function rawOf(m: Model): Raw {
  return m._raw as unknown as Raw;
}

function parseState(raw: Raw): RowState {
  const s = raw['fieldsync'];
  if (typeof s !== 'string' || s === '') return {};
  try {
    return JSON.parse(s) as RowState;
  } catch {
    return {};
  }
}

function stateText(s: RowState): string | null {
  const out: RowState = {};
  if (s.p && Object.keys(s.p).length > 0) out.p = s.p;
  if (s.l && Object.keys(s.l).length > 0) out.l = s.l;
  if (s.x && Object.keys(s.x).length > 0) out.x = s.x;
  if (s.j && s.j.length > 0) out.j = s.j;
  if (s.s && Object.keys(s.s).length > 0) out.s = s.s;
  return Object.keys(out).length > 0 ? JSON.stringify(out) : null;
}

function changedColumns(raw: Raw): string[] {
  return raw._changed ? raw._changed.split(',').filter((c) => c !== '' && c !== 'fieldsync' && c !== 'version') : [];
}

/**
 * The client's Store over a WatermelonDB database. Records of the app's tables are its rows (the
 * app reads and observes them as usual); every write of the client is one WatermelonDB writer and
 * one batch, so a pull page and its cursor commit together.
 */
export class WatermelonStore implements Store {
  readonly database: Database;
  private readonly tableOf = new Map<RecordType, string>();
  private readonly jsonOf = new Map<RecordType, Set<string>>();

  constructor(database: Database, options: WatermelonStoreOptions = {}) {
    this.database = database;
    const tables = database.schema.tables;
    for (const name of [outboxTable, metaTable, recordsTable]) {
      if (!tables[name]) throw new Error(`fieldsync: the schema lacks table ${name}: add ...fieldsyncTables to appSchema's tables`);
    }
    for (const type of allTypes) {
      const name = options.tables?.[type] ?? defaultTables[type];
      const t = tables[name];
      if (!t) {
        if (options.tables?.[type]) throw new Error(`fieldsync: table ${name} (for ${type}) is not in the schema`);
        continue;
      }
      if (!t.columns['version'] || !t.columns['fieldsync']) {
        throw new Error(`fieldsync: table ${name} lacks the version/fieldsync columns: add ...fieldsyncColumns to its columns`);
      }
      this.tableOf.set(type, name);
      this.jsonOf.set(type, new Set([...(defaultJsonFields[type] ?? []), ...(options.json?.[type] ?? [])]));
    }
    // Records made by the app get UUIDs (the server's ids), not WatermelonDB's 16-character ids.
    randomId.setGenerator(() => uuidv7());
  }

  /** The app's table of a type, or undefined when the adapter keeps the type in fieldsync_records. */
  table(type: RecordType): string | undefined {
    return this.tableOf.get(type);
  }

  /** The types kept in the app's tables. */
  mappedTypes(): RecordType[] {
    return [...this.tableOf.keys()];
  }

  /** A row as a LocalRecord: the app's columns, the extras, and what is pending. */
  toLocal(type: RecordType, raw: Raw): LocalRecord {
    const table = this.database.schema.tables[this.tableOf.get(type)!]!;
    const st = parseState(raw);
    const json = new Set([...(st.j ?? []), ...(this.jsonOf.get(type) ?? [])]);
    const fields: Fields = { id: raw.id };
    for (const col of table.columnArray) {
      if (col.name === 'fieldsync') continue;
      let v = raw[col.name];
      if (json.has(col.name) && typeof v === 'string' && v !== '') {
        try {
          v = JSON.parse(v);
        } catch {
          // left as text: the app wrote something else there
        }
      }
      fields[col.name] = v;
    }
    Object.assign(fields, st.x ?? {});
    const version = Number(raw['version'] ?? 0) || 0;
    fields['version'] = version;
    const pending: Record<string, number> = { ...(st.p ?? {}) };
    if (raw._status === 'created') {
      for (const [k, v] of Object.entries(fields)) if (k !== 'id' && k !== 'version' && v !== null && v !== '') pending[k] = 0;
    } else if (raw._status === 'updated') {
      for (const c of changedColumns(raw)) pending[c] ??= st.l?.[c] ?? version;
    }
    return { type, id: raw.id, version: raw._status === 'created' ? 0 : version, fields, pending };
  }

  /** A LocalRecord as a row (over `existing`, whose uncollected app edits it keeps). */
  private toRaw(type: RecordType, rec: LocalRecord, existing?: Raw): Raw {
    const table = this.database.schema.tables[this.tableOf.get(type)!]!;
    const st: RowState = { x: {}, j: [], s: {} };
    const raw: Raw = { id: rec.id, _status: 'synced', _changed: '', version: rec.version };
    for (const [k, v] of Object.entries(rec.fields)) {
      if (k === 'id' || k === 'version') continue;
      const col = table.columns[k];
      if (!col || k === 'fieldsync') {
        st.x![k] = v;
      } else if (v !== null && typeof v === 'object') {
        raw[k] = JSON.stringify(v);
        st.j!.push(k);
        st.s![k] = v;
      } else {
        raw[k] = v;
      }
    }
    st.p = { ...rec.pending };
    if (existing && existing._status === 'updated') {
      // The app edited these columns since the last collection: its values stand, and the base
      // version of those edits is the row's version before this write moves it.
      const old = parseState(existing);
      st.l = { ...(old.l ?? {}) };
      const was = Number(existing['version'] ?? 0) || 0;
      for (const c of changedColumns(existing)) {
        raw[c] = existing[c];
        // A record made here has no base before its create is answered: the client fills it in.
        if (was > 0) st.l[c] ??= was;
        if (old.j?.includes(c) && !st.j!.includes(c)) st.j!.push(c);
      }
      raw._status = 'updated';
      raw._changed = existing._changed;
    }
    raw['fieldsync'] = stateText(st);
    return raw;
  }

  private async rowsById(table: string, ids: string[]): Promise<Map<string, Model>> {
    const out = new Map<string, Model>();
    for (let i = 0; i < ids.length; i += 900) {
      // SQLite binds at most 999 variables per statement.
      const rows = await this.database.get(table).query(Q.where('id', Q.oneOf(ids.slice(i, i + 900)))).fetch();
      for (const r of rows) out.set(r.id, r);
    }
    return out;
  }

  private async deletedIds(table: string): Promise<Set<string>> {
    return new Set(await this.database.adapter.getDeletedRecords(table));
  }

  async get(type: RecordType, id: string): Promise<LocalRecord | undefined> {
    return (await this.getMany(type, [id]))[0];
  }

  async getMany(type: RecordType, ids: string[]): Promise<LocalRecord[]> {
    if (ids.length === 0) return [];
    const table = this.tableOf.get(type);
    if (!table) {
      const rows = await this.rowsById(recordsTable, ids.map((id) => keyOf(type, id)));
      return [...rows.values()].map((r) => JSON.parse(String(rawOf(r)['body'])) as LocalRecord);
    }
    const rows = await this.rowsById(table, ids);
    return [...rows.values()].map((r) => this.toLocal(type, rawOf(r)));
  }

  async list(type: RecordType): Promise<LocalRecord[]> {
    const table = this.tableOf.get(type);
    if (!table) {
      const rows = await this.database.get(recordsTable).query(Q.where('type', type)).fetch();
      return rows.map((r) => JSON.parse(String(rawOf(r)['body'])) as LocalRecord);
    }
    const rows = await this.database.get(table).query().fetch();
    return rows.map((r) => this.toLocal(type, rawOf(r)));
  }

  async listIds(type: RecordType): Promise<string[]> {
    const table = this.tableOf.get(type);
    if (!table) {
      const rows = await this.database.get(recordsTable).query(Q.where('type', type)).fetch();
      return rows.map((r) => String(rawOf(r)['body'] && (JSON.parse(String(rawOf(r)['body'])) as LocalRecord).id));
    }
    return (await this.database.get(table).query().fetchIds()) as string[];
  }

  async outbox(): Promise<OutboxEntry[]> {
    const rows = await this.database.get(outboxTable).query(Q.sortBy('seq', Q.asc)).fetch();
    return rows.map((r) => JSON.parse(String(rawOf(r)['body'])) as OutboxEntry);
  }

  async cursor(): Promise<string | undefined> {
    return this.getMeta(cursorKey);
  }

  async getMeta(key: string): Promise<string | undefined> {
    const rows = await this.rowsById(metaTable, [key]);
    const r = rows.get(key);
    return r ? String(rawOf(r)['value']) : undefined;
  }

  async write(batch: WriteBatch): Promise<void> {
    await this.database.write(async () => {
      const ops = await this.prepare(batch);
      await this.database.batch(...ops.map((op) => op()));
    }, 'fieldsync-write');
  }

  /**
   * The prepared operations of a batch, for database.batch inside a writer. Records whose app
   * edits are not collected yet keep them: a put keeps the edited columns, a removal first turns
   * them into outbox entries (so an out-of-scope delete never loses an unpushed edit: it is pushed
   * and comes back refused, visible).
   */
  async prepare(batch: WriteBatch): Promise<Op[]> {
    const ops: Op[] = [];
    const byType = new Map<RecordType, { put: LocalRecord[]; remove: string[] }>();
    for (const r of batch.put ?? []) {
      const e = byType.get(r.type) ?? { put: [], remove: [] };
      e.put.push(r);
      byType.set(r.type, e);
    }
    for (const k of batch.remove ?? []) {
      const e = byType.get(k.type) ?? { put: [], remove: [] };
      e.remove.push(k.id);
      byType.set(k.type, e);
    }
    const outboxPut = [...(batch.outboxPut ?? [])];
    const meta: Record<string, string | undefined> = { ...(batch.meta ?? {}) };
    for (const [type, { put, remove }] of byType) {
      const table = this.tableOf.get(type);
      if (!table) {
        const rows = await this.rowsById(recordsTable, [...put.map((r) => keyOf(type, r.id)), ...remove.map((id) => keyOf(type, id))]);
        const col = this.database.get(recordsTable);
        for (const r of put) {
          const body = JSON.stringify(r);
          const row = rows.get(keyOf(type, r.id));
          if (row) ops.push(() => this.replace(row, { ...rawOf(row), body }));
          else ops.push(() => col.prepareCreateFromDirtyRaw({ id: keyOf(type, r.id), _status: 'synced', _changed: '', type, body }));
        }
        for (const id of remove) {
          const row = rows.get(keyOf(type, id));
          if (row) ops.push(() => row.prepareDestroyPermanently());
        }
        continue;
      }
      const col = this.database.get(table);
      const rows = await this.rowsById(table, [...put.map((r) => r.id), ...remove]);
      const deleted = await this.deletedIds(table);
      const removing = new Set(remove);
      for (const r of put) {
        if (removing.has(r.id)) continue;
        const row = rows.get(r.id);
        if (row && rawOf(row)._status === 'created') continue; // the app's create waits for collection
        if (row && rawOf(row)._status === 'deleted') {
          // The app's delete waits for collection; it needs the version of the copy it deleted.
          if (r.version > (Number(rawOf(row)['version']) || 0)) ops.push(() => this.replace(row, { ...rawOf(row), version: r.version }));
          continue;
        }
        const raw = this.toRaw(type, r, row ? rawOf(row) : undefined);
        ops.push(row ? () => this.replace(row, raw) : () => col.prepareCreateFromDirtyRaw(raw));
      }
      const toCollect: Model[] = [];
      for (const id of remove) {
        const row = rows.get(id);
        if (row) {
          if (rawOf(row)._status !== 'synced') toCollect.push(row);
          ops.push(() => row.prepareDestroyPermanently());
        }
      }
      if (toCollect.length > 0 && isWritable(type)) {
        const role = await roleOf(this);
        const box: WriteBatch = {};
        const next = addEdits(box, this.editsOf(type, toCollect, role), new Map(), Math.max(await nextSeqOf(this), Number(meta[MetaKeys.nextSeq] ?? 0)), role);
        outboxPut.push(...(box.outboxPut ?? []));
        meta[MetaKeys.nextSeq] = String(next);
      }
      if (remove.length > 0 && deleted.size > 0) {
        const gone = remove.filter((id) => deleted.has(id));
        if (gone.length > 0) await this.database.adapter.destroyDeletedRecords(table, gone);
      }
    }
    ops.push(...(await this.prepareOutbox(outboxPut, batch.outboxRemove ?? [])));
    if (batch.cursor !== undefined) meta[cursorKey] = batch.cursor === null ? undefined : batch.cursor;
    ops.push(...(await this.prepareMeta(meta)));
    return ops;
  }

  private replace(row: Model, raw: Record<string, unknown>): Model {
    const schema = this.database.schema.tables[row.table]!;
    return row.prepareUpdate(() => {
      // Replaced whole, not through setters: a write of the client is not an app edit to track.
      (row as unknown as { _raw: unknown })._raw = sanitize(raw, schema);
    });
  }

  private async prepareOutbox(put: OutboxEntry[], remove: string[]): Promise<Op[]> {
    if (put.length === 0 && remove.length === 0) return [];
    const ids = [...put.map((e) => e.mutation.id), ...remove];
    const rows = await this.rowsById(outboxTable, ids);
    const col = this.database.get(outboxTable);
    const ops: Op[] = [];
    const removing = new Set(remove);
    for (const e of put) {
      if (removing.has(e.mutation.id)) continue;
      const row = rows.get(e.mutation.id);
      const raw = { id: e.mutation.id, _status: 'synced', _changed: '', seq: e.seq, body: JSON.stringify(e) };
      ops.push(row ? () => this.replace(row, raw) : () => col.prepareCreateFromDirtyRaw(raw));
    }
    for (const id of remove) {
      const row = rows.get(id);
      if (row) ops.push(() => row.prepareDestroyPermanently());
    }
    return ops;
  }

  private async prepareMeta(meta: Record<string, string | undefined>): Promise<Op[]> {
    const keys = Object.keys(meta);
    if (keys.length === 0) return [];
    const rows = await this.rowsById(metaTable, keys);
    const col = this.database.get(metaTable);
    const ops: Op[] = [];
    for (const [k, v] of Object.entries(meta)) {
      const row = rows.get(k);
      if (v === undefined) {
        if (row) ops.push(() => row.prepareDestroyPermanently());
      } else {
        const raw = { id: k, _status: 'synced', _changed: '', value: v };
        ops.push(row ? () => this.replace(row, raw) : () => col.prepareCreateFromDirtyRaw(raw));
      }
    }
    return ops;
  }

  async clear(): Promise<void> {
    await this.database.write(async () => {
      const ops: Op[] = [];
      for (const table of [...this.tableOf.values(), outboxTable, metaTable, recordsTable]) {
        const rows = await this.database.get(table).query().fetch();
        ops.push(...rows.map((r) => () => r.prepareDestroyPermanently()));
        const deleted = await this.database.adapter.getDeletedRecords(table);
        if (deleted.length > 0) await this.database.adapter.destroyDeletedRecords(table, deleted);
      }
      await this.database.batch(...ops.map((op) => op()));
    }, 'fieldsync-clear');
  }

  /**
   * The app's edits to rows of one type as LocalEdits. A created row is one create with its
   * fields; an updated row is one update per base version of its changed columns (the row's
   * version when the app edited them, or the one kept when a write moved it since); a deleted row
   * is a delete based on the copy the app deleted.
   */
  /**
   * Turns every app edit WatermelonDB tracks (rows whose _status is created, updated or deleted)
   * into outbox entries, in one writer: the rows are marked synced with the edited units pending,
   * deleted rows are destroyed, and the entries are added, all in one batch. Returns how many
   * mutations it made. synchronize() calls it before every round.
   */
  async collectLocalChanges(): Promise<number> {
    return this.database.write(async () => {
      const role = await roleOf(this);
      const ops: Op[] = [];
      const edits: LocalEdit[] = [];
      const records = new Map<string, LocalRecord>();
      const rowsOf = new Map<string, Model>();
      const gone: [string, string[]][] = [];
      for (const [type, table] of this.tableOf) {
        if (!isWritable(type)) continue;
        const col = this.database.get(table);
        const [created, updated, deletedIds] = await Promise.all([
          col.query(Q.where('_status', 'created')).fetch(),
          col.query(Q.where('_status', 'updated')).fetch(),
          this.database.adapter.getDeletedRecords(table),
        ]);
        const deleted = await Promise.all(deletedIds.map((id) => col.find(id)));
        const rows = [...created, ...updated, ...deleted];
        const made = this.editsOf(type, rows, role);
        edits.push(...made);
        for (const row of [...created, ...updated]) {
          records.set(keyOf(type, row.id), this.toLocal(type, rawOf(row)));
          rowsOf.set(keyOf(type, row.id), row);
        }
        const destroy = made.filter((e) => e.op === 'delete').map((e) => e.id);
        if (destroy.length > 0) gone.push([table, destroy]);
      }
      if (edits.length === 0) return 0;
      const batch: WriteBatch = {};
      addEdits(batch, edits, new Map(), await nextSeqOf(this), role);
      // Pending units: those of the record's entries still in the outbox, the new ones included
      // (as the client computes them after a push), so nothing the app edited is pulled over.
      const box = [...(await this.outbox()), ...(batch.outboxPut ?? [])];
      for (const [key, rec] of records) rec.pending = pendingOf(box.filter((e) => !e.rejected && keyOf(e.mutation.type, e.mutation.entity_id) === key), role);
      for (const [key, rec] of records) {
        const row = rowsOf.get(key)!;
        const raw = this.toRaw(rec.type, { ...rec, fields: { ...rec.fields } });
        if (rawOf(row)._status === 'created') raw['version'] = 0;
        ops.push(() => this.replace(row, raw));
      }
      ops.push(...(await this.prepareOutbox(batch.outboxPut ?? [], [])));
      ops.push(...(await this.prepareMeta(batch.meta ?? {})));
      await this.database.batch(...ops.map((op) => op()));
      for (const [table, ids] of gone) await this.database.adapter.destroyDeletedRecords(table, ids);
      return edits.length;
    }, 'fieldsync-collect');
  }

  editsOf(type: RecordType, rows: Model[], role: string | undefined): LocalEdit[] {
    if (!isWritable(type)) return [];
    const edits: LocalEdit[] = [];
    for (const row of rows) {
      const raw = rawOf(row);
      const rec = this.toLocal(type, raw);
      const st = parseState(raw);
      if (raw._status === 'created') {
        // A column the app never set holds its type's empty value ('' for a required string).
        const set = Object.fromEntries(Object.entries(rec.fields).filter(([, v]) => v !== ''));
        edits.push({ type, id: raw.id, op: 'create', fields: createFields(set) });
      } else if (raw._status === 'deleted') {
        // A record made here and deleted before its create was answered waits for that answer.
        if (rec.version >= 1) edits.push({ type, id: raw.id, op: 'delete', baseVersion: rec.version });
      } else if (raw._status === 'updated') {
        const byBase = new Map<number, Fields>();
        for (const c of changedColumns(raw)) {
          const base = st.l?.[c] ?? rec.version;
          const f = byBase.get(base) ?? {};
          f[c] = rec.fields[c];
          byBase.set(base, f);
        }
        for (const [base, patch] of byBase) {
          // Only JSON columns have a known earlier value; any other changed column is sent.
          const d = diff(type, { ...(st.s ?? {}) }, patch, role);
          if (d.units.length > 0) edits.push({ type, id: raw.id, op: 'update', baseVersion: base, fields: d.wire });
        }
      }
    }
    return edits;
  }
}

function sanitize(raw: Record<string, unknown>, schema: TableSchema): unknown {
  // WatermelonDB's sanitizedRaw without importing its internals: the schema's columns, with the
  // null value of each type where a non-optional column has none (as WatermelonDB would store it).
  const out: Record<string, unknown> = { id: raw['id'], _status: raw['_status'] ?? 'synced', _changed: raw['_changed'] ?? '' };
  for (const col of schema.columnArray) {
    const v = raw[col.name];
    if (v === undefined || v === null) {
      out[col.name] = col.isOptional ? null : col.type === 'string' ? '' : col.type === 'number' ? 0 : false;
    } else if (col.type === 'number' && typeof v !== 'number') {
      out[col.name] = Number(v);
    } else if (col.type === 'boolean' && typeof v !== 'boolean') {
      out[col.name] = Boolean(v);
    } else if (col.type === 'string' && typeof v !== 'string') {
      out[col.name] = typeof v === 'object' ? JSON.stringify(v) : String(v);
    } else {
      out[col.name] = v;
    }
  }
  return out;
}

/** What synchronize() needs of the client: one sync round (push, then pull to the end). */
export interface SyncRound<R> {
  sync(o?: { signal?: AbortSignal }): Promise<R>;
}

/**
 * One sync round for a WatermelonDB app, where it would call WatermelonDB's synchronize(): the
 * app's edits since the last round go into the outbox (field by field, each with its base
 * version), then the client pushes the outbox and pulls until the server has nothing more,
 * applying every result and page to the app's tables. Call it when the app opens, after an edit,
 * when the network returns and on a push notification; it never runs two rounds at once.
 */
export async function synchronize<R>(o: { store: WatermelonStore; client: SyncRound<R>; signal?: AbortSignal }): Promise<R> {
  await o.store.collectLocalChanges();
  return o.client.sync({ signal: o.signal });
}

/**
 * Sends the app's edits as they happen: after each change to the app's synced tables (debounced),
 * the edits are collected and, if there were any, a sync round runs. The client's own writes also
 * wake it, find nothing to collect and run no round. Returns the function that stops it.
 */
export function syncOnLocalChanges(o: { store: WatermelonStore; client: SyncRound<unknown>; debounceMs?: number; onError?: (e: unknown) => void }): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = async () => {
    try {
      if ((await o.store.collectLocalChanges()) > 0) await o.client.sync();
    } catch (e) {
      o.onError?.(e);
    }
  };
  const tables = o.store.mappedTypes().map((t) => o.store.table(t)!);
  const unsubscribe = o.store.database.experimentalSubscribe(tables, () => {
    clearTimeout(timer);
    timer = setTimeout(run, o.debounceMs ?? 300);
  });
  return () => {
    clearTimeout(timer);
    unsubscribe();
  };
}
