// The shapes the server sends and takes, by their protocol names (docs/protocol.md §3-§5). They
// come from the generated OpenAPI types (src/generated/openapi.ts, `npm run gen`), so a record's
// shape is written once, by the server's description. The client itself handles records as plain
// field maps (Fields): it merges and diffs them field by field without knowing each type.

import type { components } from './generated/openapi.js';

type Schemas = components['schemas'];

/** The records a pull brings, by type, as the server describes them. */
export interface Records {
  task: Schemas['SyncTask'];
  task_note: Schemas['SyncTaskNote'];
  claim: Schemas['SyncClaim'];
  customer: Schemas['SyncCustomer'];
  document: Schemas['SyncDocument'];
  notification: Schemas['SyncNotification'];
  user: Schemas['SyncUser'];
}

/** The writable fields of each type that takes writes (who may write each: the push description). */
export interface WritableFields {
  task: Schemas['SyncTaskFields'];
  task_note: Schemas['SyncTaskNoteFields'];
  claim: Schemas['SyncClaimFields'];
  customer: Schemas['SyncCustomerFields'];
  document: Schemas['SyncDocumentFields'];
  notification: Schemas['SyncNotificationFields'];
}

/** The record types a pull brings (docs/protocol.md §3). */
export type RecordType = Schemas['Change']['type'];

/** The types that take writes (`user` is read-only). */
export type WritableType = Schemas['Mutation']['type'];

/** The record types in the order a snapshot sends them (what others refer to comes first). */
export const recordTypes: readonly RecordType[] = ['user', 'customer', 'claim', 'task', 'task_note', 'document', 'notification'];

/** A record's fields as a pull sends them (`data`): always holds `id` and `version`. */
export type Fields = Record<string, unknown>;

/** One write sent by push (docs/protocol.md §5.1). Never changed once sent: a retry sends it as is. */
export interface Mutation {
  /** Made on the device once per change (UUIDv7); survives retries and restarts. */
  id: string;
  type: WritableType;
  op: Schemas['Mutation']['op'];
  entity_id: string;
  /** The version of the copy the edit was made on (updates and deletes). */
  base_version?: number;
  /** Only the fields the user changed (updates), all required fields (creates). */
  fields?: Fields;
  /** When the user made the change (RFC 3339); for people, never for ordering. */
  client_time?: string;
}

/** A field the server could not take as sent (docs/protocol.md §5.3, §6). */
export type Conflict = Schemas['SyncConflict'];

/** The server's answer to one mutation, in the order sent. */
export interface MutationResult {
  id: string;
  status: Schemas['MutationResult']['status'];
  version?: number;
  /** The server's record after the mutation; for a rejected one, the record as it now is. */
  entity?: Fields | null;
  /**
   * Rejected only, in place of `entity`: the caller may see no record under the id (`deleted`,
   * `out_of_scope`, or `not_found` for a refused create).
   */
  gone?: 'deleted' | 'out_of_scope' | 'not_found';
  conflicts?: Conflict[] | null;
  error?: { code: string; message: string; details?: Record<string, unknown> } | null;
}

/** One entry of a pull page. */
export interface Change {
  type: RecordType;
  id: string;
  op: 'upsert' | 'delete';
  version?: number;
  reason?: 'deleted' | 'out_of_scope';
  data?: Fields;
}

/** A pull page; `remaining` is an estimate of what is still to come, when the server says. */
export interface PullPage {
  changes: Change[];
  cursor: string;
  has_more: boolean;
  remaining?: number;
}

/** Who the client is signed in as. */
export type User = Schemas["User"];
