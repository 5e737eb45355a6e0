// Client: a device's local copy of its user's records, kept in sync with a fieldsync server by the
// rules of docs/protocol.md. The app reads and edits records through it; every edit goes into a
// durable outbox as a mutation (its id made once, kept across retries and restarts, its base
// version the version of the copy the edit was made on, its fields only what changed), and a sync
// round pushes the outbox, then pulls until the server has nothing more.
//
// Every read-modify-write of the store runs under one lock, so an edit made while a sync is in
// flight is neither lost nor half-applied; network calls run outside it.

import { FieldsyncError, NetworkError } from './errors.js';
import type { ServerEvent } from './events.js';
import { diff, overlay, unitsOf } from './fields.js';
import { limits } from './generated/spec.js';
import { Session, type SessionOptions } from './session.js';
import { MetaKeys, type LocalRecord, type OutboxEntry, type RecordKey, type Store, type WriteBatch } from './store.js';
import { uploadDocument, type UploadOptions } from './upload.js';
import { uuidv7 } from './uuid.js';
import { recordTypes, type Change, type Fields, type Mutation, type MutationResult, type PullPage, type RecordType, type User, type WritableType } from './wire.js';

export interface ClientOptions extends SessionOptions {
  /** Pull page size (the server caps it at 5,000). */
  pullLimit?: number;
  /** Most mutations a push carries (the server's limit, from its description, by default). */
  pushMaxMutations?: number;
  /** Most bytes a push body carries (the server refuses 5 MiB by default; a margin is kept). */
  pushMaxBytes?: number;
  /** Called for every result a push brings (conflicts and rejections included), after it is applied. */
  onResult?: (result: MutationResult, mutation: Mutation) => void;
  /** Called after a pull page is applied: for progress bars (`remaining`) and to refresh views. */
  onPage?: (page: { changes: number; hasMore: boolean; remaining?: number; snapshot: boolean }) => void;
}

/** What one sync round did. */
export interface SyncReport {
  pushed: number;
  rejected: number;
  conflicts: number;
  pulled: number;
  resnapshot: boolean;
}

/** A local change the outbox could not deliver: kept for the user to see until dismissed. */
export interface RejectedWrite {
  mutation: Mutation;
  result: MutationResult;
}

/** Meta key set while a resnapshot runs: a restart in the middle starts it again from scratch. */
const resnapshotKey = 'resnapshot';

export class Client {
  readonly session: Session;
  private readonly store: Store;
  private lockTail: Promise<unknown> = Promise.resolve();
  private round: Promise<SyncReport> | undefined;
  private queued: Promise<SyncReport> | undefined;
  private chasing: { fresh: boolean } | undefined;

  constructor(private readonly o: ClientOptions) {
    this.store = o.store;
    this.session = new Session(o);
  }

  // ---- sign-in -------------------------------------------------------------------------------

  login(login: string, password: string): Promise<User> {
    return this.session.login(login, password);
  }

  logout(): Promise<void> {
    return this.session.logout();
  }

  user(): Promise<User | undefined> {
    return this.session.user();
  }

  // ---- reading -------------------------------------------------------------------------------

  /** A record as the user sees it (unpushed edits included), or undefined. */
  async get(type: RecordType, id: string): Promise<Fields | undefined> {
    return (await this.store.get(type, id))?.fields;
  }

  /** Every record of a type, as the user sees them. */
  async list(type: RecordType): Promise<Fields[]> {
    return (await this.store.list(type)).map((r) => r.fields);
  }

  /** Mutations waiting to be pushed. */
  async pendingCount(): Promise<number> {
    return (await this.store.outbox()).filter((e) => !e.rejected).length;
  }

  /** Writes the server refused (or that could not be sent): show them; dismiss when seen. */
  async rejected(): Promise<RejectedWrite[]> {
    return (await this.store.outbox()).filter((e) => e.rejected).map((e) => ({ mutation: e.mutation, result: e.rejected! }));
  }

  async dismiss(mutationId: string): Promise<void> {
    await this.store.write({ outboxRemove: [mutationId] });
  }

  // ---- editing -------------------------------------------------------------------------------

  /**
   * Records an edit: only the fields that differ from the record as the user sees it are sent,
   * based on the version of that copy. Returns the mutation id, or undefined if nothing changed.
   */
  update(type: WritableType, id: string, patch: Fields): Promise<string | undefined> {
    return this.locked(async () => {
      const rec = await this.store.get(type, id);
      if (!rec) throw new FieldsyncError(404, 'not_found', `no local ${type} ${id}`);
      const role = (await this.user())?.role;
      const d = diff(type, rec.fields, patch, role);
      if (!d.units.length) return undefined;
      const fields = { ...rec.fields };
      for (const k of Object.keys(d.wire)) fields[k] = patch[k];
      const pending = { ...rec.pending };
      for (const u of d.units) if (!(u in pending)) pending[u] = rec.version;
      const next: LocalRecord = { ...rec, fields, pending };

      const outbox = await this.store.outbox();
      // A record made here whose create has not left yet: the edit joins the create.
      const create = outbox.find((e) => e.mutation.entity_id === id && e.mutation.op === 'create' && !e.sent && !e.rejected);
      if (create) {
        const wire = { ...create.mutation.fields };
        for (const k of Object.keys(d.wire)) wire[k] = patch[k];
        await this.store.write({ put: [next], outboxPut: [{ ...create, mutation: { ...create.mutation, fields: wire } }] });
        return create.mutation.id;
      }
      // base_version 0: the record's create is in flight; push fills it in once the create is answered.
      const m: Mutation = { id: uuidv7(), type, op: 'update', entity_id: id, base_version: rec.version, fields: d.wire, client_time: new Date().toISOString() };
      await this.store.write({ put: [next], ...(await this.enqueue(m)) });
      return m.id;
    });
  }

  /** Creates a record on the device (its id made here unless given); it goes up with the next push. */
  create(type: WritableType, fields: Fields): Promise<string> {
    return this.locked(async () => {
      const id = (fields.id as string | undefined) ?? uuidv7();
      const wire = { ...fields };
      delete wire.id;
      const pending: Record<string, number> = {};
      for (const k of Object.keys(wire)) pending[k] = 0;
      const rec: LocalRecord = { type, id, version: 0, fields: { ...wire, id, version: 0 }, pending };
      const m: Mutation = { id: uuidv7(), type, op: 'create', entity_id: id, fields: wire, client_time: new Date().toISOString() };
      await this.store.write({ put: [rec], ...(await this.enqueue(m)) });
      return id;
    });
  }

  /** Deletes a record on the device; the delete goes up with the next push. */
  delete(type: WritableType, id: string): Promise<void> {
    return this.locked(async () => {
      const rec = await this.store.get(type, id);
      if (!rec) return;
      const outbox = await this.store.outbox();
      const mine = outbox.filter((e) => e.mutation.entity_id === id && !e.rejected);
      if (mine.some((e) => e.mutation.op === 'create' && !e.sent)) {
        // Never left the device: forget it entirely.
        await this.store.write({ remove: [rec], outboxRemove: mine.map((e) => e.mutation.id) });
        return;
      }
      const m: Mutation = { id: uuidv7(), type, op: 'delete', entity_id: id, base_version: rec.version, client_time: new Date().toISOString() };
      await this.store.write({ remove: [rec], ...(await this.enqueue(m)) });
    });
  }

  // ---- syncing -------------------------------------------------------------------------------

  /**
   * One sync round: push the outbox, then pull until the server has nothing more. Rounds do not
   * overlap: asked for during a round, one more round follows it (and both callers get its report).
   * `wait` (seconds, at most 60) makes the pull a long-poll when there is nothing new.
   */
  sync(o: { wait?: number; signal?: AbortSignal } = {}): Promise<SyncReport> {
    if (this.round) {
      this.queued ??= this.round.catch(() => undefined).then(() => {
        this.queued = undefined;
        return this.sync(o);
      });
      return this.queued;
    }
    const round = (async () => {
      try {
        const pushed = await this.push(o.signal);
        const pulled = await this.pull({ wait: o.wait, signal: o.signal });
        return { ...pushed, ...pulled };
      } finally {
        this.round = undefined;
      }
    })();
    this.round = round;
    return round;
  }

  /**
   * Pushes the outbox in order, in batches within the server's limits. Each mutation is marked
   * sent (durably) before it first leaves, and leaves the outbox only with its result in hand: a
   * push whose answer is lost is sent again, same ids, same content.
   */
  async push(signal?: AbortSignal): Promise<{ pushed: number; rejected: number; conflicts: number }> {
    const report = { pushed: 0, rejected: 0, conflicts: 0 };
    for (;;) {
      const batch = await this.locked(() => this.nextBatch());
      if (!batch.length) return report;
      const res = await this.session.request('POST', '/v1/sync/push', { body: { mutations: batch.map((e) => e.mutation) }, signal });
      const { results } = (await res.json()) as { results: MutationResult[] };
      await this.locked(() => this.applyResults(batch, results, report));
    }
  }

  /** Pulls until `has_more` is false; a 410 starts a resnapshot. */
  async pull(o: { wait?: number; signal?: AbortSignal } = {}): Promise<{ pulled: number; resnapshot: boolean }> {
    if (await this.store.getMeta(resnapshotKey)) return this.resnapshot(o.signal);
    let pulled = 0;
    let wait = o.wait;
    for (;;) {
      let page: PullPage;
      try {
        page = await this.fetchPage(await this.store.cursor(), wait, o.signal);
      } catch (e) {
        if (e instanceof FieldsyncError && e.code === 'cursor_expired') return this.resnapshot(o.signal);
        throw e;
      }
      wait = undefined;
      pulled += page.changes.length;
      await this.applyPage(page, undefined, o.signal);
      this.o.onPage?.({ changes: page.changes.length, hasMore: page.has_more, remaining: page.remaining, snapshot: false });
      if (!page.has_more) return { pulled, resnapshot: false };
    }
  }

  /**
   * Drops the cursor, pulls a whole new snapshot, then removes every local record the snapshot did
   * not bring, but for records made here that still wait in the outbox (docs/protocol.md §4). The
   * old store is never merged into the new one.
   */
  async resnapshot(signal?: AbortSignal): Promise<{ pulled: number; resnapshot: boolean }> {
    await this.store.write({ cursor: null, meta: { [resnapshotKey]: '1' } });
    const seen = new Map<RecordType, Set<string>>(recordTypes.map((t) => [t, new Set<string>()]));
    let pulled = 0;
    for (;;) {
      const page = await this.fetchPage(await this.store.cursor(), undefined, signal);
      pulled += page.changes.length;
      await this.applyPage(page, seen, signal);
      this.o.onPage?.({ changes: page.changes.length, hasMore: page.has_more, remaining: page.remaining, snapshot: true });
      if (!page.has_more) break;
    }
    const stale = async () => {
      const outbox = (await this.store.outbox()).filter((e) => !e.rejected);
      const waitingCreates = new Set(outbox.filter((e) => e.mutation.op === 'create').map((e) => e.mutation.entity_id));
      const out: RecordKey[] = [];
      for (const type of recordTypes) {
        for (const id of await this.store.listIds(type)) {
          if (!seen.get(type)!.has(id) && !waitingCreates.has(id)) out.push({ type, id });
        }
      }
      return { out, withEdits: out.filter((k) => outbox.some((e) => e.mutation.entity_id === k.id)) };
    };
    // Unpushed edits of records about to go are pushed first; what still cannot go stays visible.
    if ((await stale()).withEdits.length) await this.push(signal).catch(() => undefined);
    await this.locked(async () => {
      const { out } = await stale();
      const batch: WriteBatch = { remove: out, outboxPut: await this.refuseEdits(out, 'out_of_scope'), meta: { [resnapshotKey]: undefined } };
      await this.store.write(batch);
    });
    return { pulled, resnapshot: true };
  }

  /**
   * Keeps the store in sync while `signal` is not aborted: a long-poll after every round, or, with
   * `events`, a round at every `sync` event of the event stream. Errors wait (Retry-After, or a
   * growing back-off) and go round again; a session that ended stops it.
   */
  async live(o: { signal: AbortSignal; events?: boolean; onError?: (e: unknown) => void; onEvent?: (e: ServerEvent) => void }): Promise<void> {
    const { watchEvents } = await import('./events.js');
    let backoff = 1000;
    const pause = (ms: number) => new Promise((r) => { const t = setTimeout(r, ms); o.signal.addEventListener('abort', () => { clearTimeout(t); r(undefined); }, { once: true }); });
    if (o.events) {
      await watchEvents(this.session, {
        signal: o.signal,
        onEvent: (ev) => {
          o.onEvent?.(ev);
          if (ev.event === 'ready') this.sync({ signal: o.signal }).catch((e) => o.onError?.(e));
          if (ev.event === 'sync') this.chase(o.signal, pause).catch((e) => o.onError?.(e));
        },
        onError: o.onError,
      });
      return;
    }
    while (!o.signal.aborted) {
      try {
        await this.sync({ wait: 60, signal: o.signal });
        backoff = 1000;
      } catch (e) {
        if (o.signal.aborted) return;
        o.onError?.(e);
        if (!(await this.session.signedIn())) return;
        const ms = e instanceof FieldsyncError && e.retryAfterMs ? e.retryAfterMs : backoff;
        backoff = Math.min(backoff * 2, 120_000);
        await pause(ms + Math.random() * 500);
      }
    }
  }

  /**
   * Uploads a document's bytes (the document's create must have been pushed: push first). Resumes
   * a half-done upload of the same document, after a restart too.
   */
  async upload(documentId: string, data: Uint8Array, o: UploadOptions = {}): Promise<void> {
    await uploadDocument(this.session, this.store, documentId, data, o);
  }

  /**
   * The sync a `sync` event asks for. The stream announces a change once it has committed, but a
   * pull serves it only once every older transaction has ended too (sync/doc.go), so a round right
   * after the event may bring nothing yet: then it tries again, waiting longer each time (about a
   * minute in all), until a round brings something.
   */
  private async chase(signal: AbortSignal, pause: (ms: number) => Promise<unknown>): Promise<void> {
    // One chase at a time; a new event starts the running one's waits over.
    if (this.chasing) {
      this.chasing.fresh = true;
      return;
    }
    const c = (this.chasing = { fresh: false });
    try {
      for (let ms = 250; ms <= 32_000 && !signal.aborted; ms *= 2) {
        const r = await this.sync({ signal });
        if (r.pulled > 0 || r.resnapshot) return;
        if (c.fresh) {
          c.fresh = false;
          ms = 125;
        }
        await pause(ms);
      }
    } finally {
      this.chasing = undefined;
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Runs fn after every earlier locked call has finished. */
  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lockTail.then(fn, fn);
    this.lockTail = run.catch(() => undefined);
    return run;
  }

  /** The write that adds a mutation at the end of the outbox. */
  private async enqueue(m: Mutation): Promise<WriteBatch> {
    const seq = Number((await this.store.getMeta(MetaKeys.nextSeq)) ?? '1');
    return { outboxPut: [{ seq, mutation: m }], meta: { [MetaKeys.nextSeq]: String(seq + 1) } };
  }

  /**
   * The next mutations to push, in order, marked sent. It stops before an update whose record's
   * create has not been answered (its base version is not known yet), and within the limits.
   */
  private async nextBatch(): Promise<OutboxEntry[]> {
    const max = this.o.pushMaxMutations ?? limits.pushMaxMutations;
    const maxBytes = this.o.pushMaxBytes ?? 4 * 1024 * 1024;
    const batch: OutboxEntry[] = [];
    const changed: OutboxEntry[] = [];
    let bytes = 20;
    const outbox = await this.store.outbox();
    for (const e of outbox) {
      if (e.rejected) continue;
      if (batch.length >= max) break;
      let entry = e;
      if (!e.sent && e.mutation.op !== 'create' && !e.mutation.base_version) {
        const rec = await this.store.get(e.mutation.type, e.mutation.entity_id);
        if (!rec || rec.version === 0) {
          const creating = outbox.some((c) => c.mutation.op === 'create' && c.mutation.entity_id === e.mutation.entity_id && !c.rejected);
          if (creating) break; // its create goes first; this one follows once it is answered
          // The record's create was refused: nothing to update. Kept, refused, for the user to see.
          changed.push({ ...e, rejected: { id: e.mutation.id, status: 'rejected', error: { code: 'not_found', message: `the ${e.mutation.type} was never created` } } });
          continue;
        }
        entry = { ...e, mutation: { ...e.mutation, base_version: rec.version } };
      }
      const size = JSON.stringify(entry.mutation).length + 1;
      if (batch.length && bytes + size > maxBytes) break;
      bytes += size;
      if (!entry.sent) {
        entry = { ...entry, sent: true };
        changed.push(entry);
      }
      batch.push(entry);
    }
    if (changed.length) await this.store.write({ outboxPut: changed });
    return batch;
  }

  /** Applies a push's results: the outbox, the records, the rejected writes. */
  private async applyResults(batch: OutboxEntry[], results: MutationResult[], report: { pushed: number; rejected: number; conflicts: number }): Promise<void> {
    const byId = new Map(results.map((r) => [r.id, r]));
    const done = new Set<string>();
    const outboxPut: OutboxEntry[] = [];
    for (const e of batch) {
      const r = byId.get(e.mutation.id);
      if (!r) continue; // not answered: stays, and is sent again
      done.add(e.mutation.id);
      report.pushed++;
      if (r.status === 'rejected') {
        report.rejected++;
        outboxPut.push({ ...e, rejected: r });
      }
      report.conflicts += r.conflicts?.length ?? 0;
    }
    const remaining = (await this.store.outbox()).filter((e) => !e.rejected && !done.has(e.mutation.id));
    const role = (await this.user())?.role;
    const put = new Map<string, LocalRecord>();
    const remove: RecordKey[] = [];
    for (const e of batch) {
      const r = byId.get(e.mutation.id);
      if (!r) continue;
      const m = e.mutation;
      const key = `${m.type}:${m.entity_id}`;
      const rec = put.get(key) ?? (await this.store.get(m.type, m.entity_id));
      const entity = r.entity ?? undefined;
      if (!rec) {
        // Gone locally: a delete of ours, or a pull removed it. Only the server keeping what we
        // deleted (update_wins) brings it back; a pull's removal is never undone by a result.
        if (m.op === 'delete' && r.status === 'conflict' && entity) {
          put.set(key, { type: m.type, id: m.entity_id, version: Number(entity.version), fields: entity, pending: {} });
        }
        continue;
      }
      if (r.gone && !(r.version !== undefined && rec.version > r.version)) {
        // Nothing the user may see is left under the id: the local copy goes, the refusal stays.
        remove.push({ type: m.type, id: m.entity_id });
        put.delete(key);
        continue;
      }
      const pending = pendingOf(remaining.filter((x) => x.mutation.entity_id === m.entity_id), role);
      const newer = entity && Number(entity.version) >= rec.version;
      const base = newer ? entity : rec.fields;
      put.set(key, {
        ...rec,
        version: newer ? Number(entity.version) : rec.version,
        fields: overlay(base, rec.fields, pending),
        pending,
      });
    }
    await this.store.write({ put: [...put.values()], remove, outboxPut, outboxRemove: [...done].filter((id) => !outboxPut.some((e) => e.mutation.id === id)) });
    for (const e of batch) {
      const r = byId.get(e.mutation.id);
      if (r) this.o.onResult?.(r, e.mutation);
    }
  }

  private async fetchPage(cursor: string | undefined, wait: number | undefined, signal?: AbortSignal): Promise<PullPage> {
    const res = await this.session.request('GET', '/v1/sync/pull', {
      query: { cursor, limit: this.o.pullLimit, wait: cursor && wait ? Math.min(wait, 60) : undefined },
      signal,
    });
    try {
      return (await res.json()) as PullPage;
    } catch (e) {
      // A page cut mid-stream is not JSON: discard it, pull again from the saved cursor.
      throw new NetworkError('pull page cut short', { cause: e });
    }
  }

  /**
   * Applies one pull page and saves its cursor in one write. Records are replaced only by higher
   * versions; a device's unpushed edits stay over the server's fields. A delete (whatever its
   * reason) removes the record; unpushed edits of it are pushed first, and whatever still cannot
   * go is kept as a visible rejected write, never silently dropped.
   */
  private async applyPage(page: PullPage, seen: Map<RecordType, Set<string>> | undefined, signal?: AbortSignal): Promise<void> {
    const deletes = page.changes.filter((c) => c.op === 'delete');
    if (deletes.length) {
      const ids = new Set(deletes.map((c) => c.id));
      const outbox = await this.store.outbox();
      if (outbox.some((e) => !e.rejected && ids.has(e.mutation.entity_id))) await this.push(signal).catch(() => undefined);
    }
    await this.locked(async () => {
      const byType = new Map<RecordType, Change[]>();
      for (const c of page.changes) (byType.get(c.type) ?? byType.set(c.type, []).get(c.type)!).push(c);
      const recs = new Map<string, LocalRecord | undefined>();
      for (const [type, cs] of byType) {
        for (const r of await this.store.getMany(type, [...new Set(cs.map((c) => c.id))])) recs.set(`${type}:${r.id}`, r);
      }
      const touched = new Set<string>();
      const removed: RecordKey[] = [];
      for (const c of page.changes) {
        const key = `${c.type}:${c.id}`;
        const local = recs.get(key);
        if (c.op === 'delete') {
          seen?.get(c.type)?.delete(c.id);
          if (local) removed.push({ type: c.type, id: c.id });
          recs.set(key, undefined);
          touched.delete(key);
          continue;
        }
        seen?.get(c.type)?.add(c.id);
        const gone = removed.findIndex((k) => k.type === c.type && k.id === c.id);
        if (gone >= 0) removed.splice(gone, 1); // deleted, then back in the same page
        const version = Number(c.version ?? c.data?.version);
        if (local && local.version >= version) continue;
        const pending = local?.pending ?? {};
        recs.set(key, { type: c.type, id: c.id, version, fields: overlay(c.data ?? {}, local?.fields, pending), pending });
        touched.add(key);
      }
      const reason = deletes.find((d) => d.reason === 'deleted') ? 'deleted' : 'out_of_scope';
      await this.store.write({
        put: [...touched].map((k) => recs.get(k)!),
        remove: removed,
        outboxPut: await this.refuseEdits(removed, reason),
        cursor: page.cursor,
      });
    });
  }

  /** The outbox entries of records about to be removed, marked as refused so the user sees them. */
  private async refuseEdits(keys: RecordKey[], code: string): Promise<OutboxEntry[]> {
    if (!keys.length) return [];
    const ids = new Set(keys.map((k) => k.id));
    return (await this.store.outbox())
      .filter((e) => !e.rejected && ids.has(e.mutation.entity_id))
      .map((e) => ({
        ...e,
        rejected: { id: e.mutation.id, status: 'rejected', error: { code, message: `the ${e.mutation.type} left this device (${code}) before the change could be sent` } },
      }));
  }
}

/** The pending units of a record, from the mutations of it still in the outbox (earliest base wins). */
function pendingOf(entries: OutboxEntry[], role: string | undefined): Record<string, number> {
  const pending: Record<string, number> = {};
  for (const e of entries) {
    const m = e.mutation;
    for (const u of unitsOf(m.type, m.fields, role)) if (!(u in pending)) pending[u] = m.base_version ?? 0;
  }
  return pending;
}
