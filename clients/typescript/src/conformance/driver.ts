// The driver: what the conformance scenarios need of a client under test. The plain client's
// driver is plain.ts; an adapter (WatermelonDB, RxDB) supplies its own, doing each step the way an
// app using that adapter would (writing to the app's database, calling its sync), so the scenarios
// test the adapter, not the plain client under it.

import type { Fields, RecordType, WritableType } from '../wire.js';

export interface Driver {
  /** Shown in test names, e.g. "plain", "watermelondb". */
  name: string;
  /**
   * A new install: empty storage, a new device id, its HTTP going to `url` (the scenarios pass the
   * URL of a proxy that can drop the connection, never the server's own).
   */
  newDevice(url: string): Promise<Device>;
}

/** A refused or undeliverable write, as the app would show it. */
export interface Refusal {
  mutationId: string;
  entityId: string;
  /** The stable code: the server's (`forbidden`, `field_frozen`...), or `out_of_scope`/`deleted` when the record left the device first. */
  code: string;
}

export interface Device {
  /** Signs in; returns who. */
  login(login: string, password: string): Promise<{ id: string; role: string }>;
  /** One sync round (push, then pull to the end). Throws when the network fails. */
  sync(): Promise<void>;
  /** A record as the app shows it (local edits included), or undefined. */
  get(type: RecordType, id: string): Promise<Fields | undefined>;
  /** The ids of the records of a type the device holds. */
  ids(type: RecordType): Promise<string[]>;
  /**
   * The user edits a record: `patch` holds the fields the user set, whole (a checklist is the whole
   * new list, as an app's form has it). The driver sends what the adapter sends.
   */
  update(type: WritableType, id: string, patch: Fields): Promise<void>;
  /** The user creates a record; returns its id. */
  create(type: WritableType, fields: Fields): Promise<string>;
  /** Writes refused and kept for the user to see. */
  refused(): Promise<Refusal[]>;
  /** Writes waiting to be pushed. */
  pending(): Promise<number>;
  /** The app is killed and started again: a new device object over the same stored data. */
  restart(): Promise<Device>;
  /** Replaces the stored cursor with one the server refuses (410 cursor_expired). */
  expireCursor(): Promise<void>;
  /** Puts a record in local storage behind the client's back (one the server never sent). */
  plant(type: RecordType, fields: Fields & { id: string; version: number }): Promise<void>;
  /** Uploads a document's bytes (its create already pushed), resuming after drops. */
  upload(documentId: string, bytes: Uint8Array, o: { fileName: string; contentType: string; sha256: string }): Promise<void>;
  /** Stops whatever runs in the background. */
  close(): Promise<void>;
}
