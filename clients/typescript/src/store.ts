// The Store is where the client keeps what must survive a restart: the local records, the outbox,
// the cursor and a few values (tokens, device id). The client owns every sync rule (docs/protocol.md
// §10); a Store only reads and writes, so an app can keep its data in its own database
// (WatermelonDB, RxDB, SQLite...) by implementing this interface. MemoryStore (memory-store.ts) is
// the reference implementation, used by the tests.

import type { Fields, Mutation, MutationResult, RecordType } from './wire.js';

/**
 * A record as the device holds it: the server's copy with the device's unpushed edits over it.
 */
export interface LocalRecord {
  type: RecordType;
  id: string;
  /**
   * The version of the server copy the fields were last brought to (by a pull or a result).
   * 0 for a record created on this device and not yet acknowledged.
   */
  version: number;
  /** What the user sees: the server's fields with local, unacknowledged edits applied over them. */
  fields: Fields;
  /**
   * The fields edited on the device and not yet acknowledged, each with the version of the copy
   * the edit was made on (its base version). A pull keeps these fields' local values and takes the
   * others; a state-based adapter groups them by base version into update mutations. Empty when
   * the record is as the server last sent it.
   */
  pending: Record<string, number>;
}

/** A record's address. */
export interface RecordKey {
  type: RecordType;
  id: string;
}

/** One mutation waiting in the outbox, or refused and kept for the user to see. */
export interface OutboxEntry {
  /** Position in the outbox: entries are pushed in increasing seq. Assigned by the client. */
  seq: number;
  /** Sent as is on every retry, after restarts too: same id, same content. */
  mutation: Mutation;
  /**
   * Set (and stored) before the mutation is first sent. Until then the client may still fold a
   * later edit into it; from then on its content never changes.
   */
  sent?: boolean;
  /**
   * Set when the server rejected the mutation, or when it could not be sent at all (e.g. its record
   * left the user's scope). A rejected entry is never sent again; it stays, visible, until the app
   * dismisses it (docs/protocol.md §5.3: "show the user what was refused and why").
   */
  rejected?: MutationResult;
}

/**
 * Everything one write changes, applied together. A Store should apply a batch in one transaction;
 * one that cannot must apply it in the order listed (records, removals, outbox, meta) and the cursor
 * last, so that a crash part-way leaves a state the client recovers from by pulling the same page
 * again (applying a page twice is harmless: records are taken by version).
 */
export interface WriteBatch {
  /** Records to write whole (insert or replace). */
  put?: LocalRecord[];
  /** Records to remove; a missing one is no error. */
  remove?: RecordKey[];
  /** Outbox entries to add or replace (by mutation id). */
  outboxPut?: OutboxEntry[];
  /** Outbox entries to remove, by mutation id. */
  outboxRemove?: string[];
  /** Values to set; undefined removes the key. */
  meta?: Record<string, string | undefined>;
  /** The pull cursor; null forgets it (a resnapshot follows). Omitted: unchanged. */
  cursor?: string | null;
}

export interface Store {
  /** One record, or undefined. */
  get(type: RecordType, id: string): Promise<LocalRecord | undefined>;
  /** Several records of one type; missing ones are left out. Used to apply a pull page at once. */
  getMany(type: RecordType, ids: string[]): Promise<LocalRecord[]>;
  /** Every record of a type (the app's lists; small stores only, an app queries its own DB). */
  list(type: RecordType): Promise<LocalRecord[]>;
  /** The ids of every record of a type: after a resnapshot, what it did not bring is removed. */
  listIds(type: RecordType): Promise<string[]>;
  /** The outbox, rejected entries included, in increasing seq. */
  outbox(): Promise<OutboxEntry[]>;
  /** The pull cursor, or undefined before the first snapshot completes a page. */
  cursor(): Promise<string | undefined>;
  /** A stored value: tokens, the device id, the signed-in user (JSON), the outbox's next seq. */
  getMeta(key: string): Promise<string | undefined>;
  /** Applies a batch (see WriteBatch for what "together" must mean). */
  write(batch: WriteBatch): Promise<void>;
  /** Erases everything: records, outbox, cursor and meta (a wiped device, another user). */
  clear(): Promise<void>;
}

/** The meta keys the client uses; an adapter need not know them. */
export const MetaKeys = {
  deviceId: 'device_id',
  accessToken: 'access_token',
  refreshToken: 'refresh_token',
  user: 'user',
  nextSeq: 'outbox_next_seq',
} as const;
