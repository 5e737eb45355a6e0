// The shapes the server sends and takes, by their protocol names (docs/protocol.md §3-§5).
// They are the generated OpenAPI types (src/generated/openapi.ts, `npm run gen`) under short
// names, so a record's shape is written once, by the server's description.

/** The record types a pull brings (docs/protocol.md §3). */
export type RecordType = 'user' | 'customer' | 'claim' | 'task' | 'task_note' | 'document' | 'notification';

/** The types that take writes (`user` is read-only). */
export type WritableType = Exclude<RecordType, 'user'>;

/** A record's fields as a pull sends them (`data`): always holds `id` and `version`. */
export type Fields = Record<string, unknown>;

/** One write sent by push (docs/protocol.md §5.1). Never changed once made: a retry sends it as is. */
export interface Mutation {
  /** Made on the device once per change (UUIDv7); survives retries and restarts. */
  id: string;
  type: WritableType;
  op: 'create' | 'update' | 'delete';
  entity_id: string;
  /** The version of the copy the edit was made on (updates and deletes). */
  base_version?: number;
  /** Only the fields the user changed (updates), all required fields (creates). */
  fields?: Fields;
  /** When the user made the change (RFC 3339); for people, never for ordering. */
  client_time?: string;
}

/** A field the server could not take as sent (docs/protocol.md §5.3, §6). */
export interface Conflict {
  field: string;
  yours: unknown;
  theirs: unknown;
  kept: 'yours' | 'theirs';
  rule: string;
}

/** The server's answer to one mutation, in the order sent. */
export interface MutationResult {
  id: string;
  status: 'applied' | 'merged' | 'conflict' | 'rejected';
  version?: number;
  /** The server's record after the mutation (rejected results too, once the server carries it). */
  entity?: Fields | null;
  /** True when the record no longer exists (or left the caller's scope). */
  gone?: boolean;
  conflicts?: Conflict[];
  error?: { code: string; message: string; details?: Record<string, unknown> };
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
