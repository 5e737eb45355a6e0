// MemoryStore keeps everything in maps: the reference Store, for tests and for apps that keep
// their data elsewhere. Values are copied in and out, so a caller cannot change stored state by
// holding on to an object (the durable stores behave the same way). `snapshot()` and the
// constructor's argument let a test "restart" an app with what it had stored.

import type { LocalRecord, OutboxEntry, RecordKey, Store, WriteBatch } from './store.js';
import type { RecordType } from './wire.js';

/** Everything a MemoryStore holds, as plain data (what a restart would find on disk). */
export interface MemoryStoreState {
  records: LocalRecord[];
  outbox: OutboxEntry[];
  cursor?: string;
  meta: Record<string, string>;
}

const copy = <T>(v: T): T => structuredClone(v);
const keyOf = (k: RecordKey) => `${k.type}:${k.id}`;

export class MemoryStore implements Store {
  private records = new Map<string, LocalRecord>();
  private entries = new Map<string, OutboxEntry>();
  private cur: string | undefined;
  private meta = new Map<string, string>();

  constructor(state?: MemoryStoreState) {
    if (!state) return;
    for (const r of state.records) this.records.set(keyOf(r), copy(r));
    for (const e of state.outbox) this.entries.set(e.mutation.id, copy(e));
    this.cur = state.cursor;
    for (const [k, v] of Object.entries(state.meta)) this.meta.set(k, v);
  }

  /** What a durable store would have on disk now. */
  snapshot(): MemoryStoreState {
    return copy({
      records: [...this.records.values()],
      outbox: [...this.entries.values()],
      cursor: this.cur,
      meta: Object.fromEntries(this.meta),
    });
  }

  async get(type: RecordType, id: string): Promise<LocalRecord | undefined> {
    const r = this.records.get(keyOf({ type, id }));
    return r && copy(r);
  }

  async getMany(type: RecordType, ids: string[]): Promise<LocalRecord[]> {
    const out: LocalRecord[] = [];
    for (const id of ids) {
      const r = this.records.get(keyOf({ type, id }));
      if (r) out.push(copy(r));
    }
    return out;
  }

  async list(type: RecordType): Promise<LocalRecord[]> {
    return [...this.records.values()].filter((r) => r.type === type).map(copy);
  }

  async listIds(type: RecordType): Promise<string[]> {
    return [...this.records.values()].filter((r) => r.type === type).map((r) => r.id);
  }

  async outbox(): Promise<OutboxEntry[]> {
    return [...this.entries.values()].sort((a, b) => a.seq - b.seq).map(copy);
  }

  async cursor(): Promise<string | undefined> {
    return this.cur;
  }

  async getMeta(key: string): Promise<string | undefined> {
    return this.meta.get(key);
  }

  async write(b: WriteBatch): Promise<void> {
    // Everything is checked and copied before anything changes, so a batch applies whole.
    const put = (b.put ?? []).map(copy);
    const outboxPut = (b.outboxPut ?? []).map(copy);
    for (const r of put) this.records.set(keyOf(r), r);
    for (const k of b.remove ?? []) this.records.delete(keyOf(k));
    for (const e of outboxPut) this.entries.set(e.mutation.id, e);
    for (const id of b.outboxRemove ?? []) this.entries.delete(id);
    for (const [k, v] of Object.entries(b.meta ?? {})) {
      if (v === undefined) this.meta.delete(k);
      else this.meta.set(k, v);
    }
    if (b.cursor !== undefined) this.cur = b.cursor ?? undefined;
  }

  async clear(): Promise<void> {
    this.records.clear();
    this.entries.clear();
    this.cur = undefined;
    this.meta.clear();
  }
}
