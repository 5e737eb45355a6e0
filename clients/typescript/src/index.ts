// @fieldsync/client: the official fieldsync client. See README.md.
export { Client, type ClientOptions, type RejectedWrite, type SyncReport } from './client.js';
export { Session, type SessionOptions } from './session.js';
export { FieldsyncError, NetworkError, SessionEndedError, type ErrorCode } from './errors.js';
export { MemoryStore, type MemoryStoreState } from './memory-store.js';
export { MetaKeys, type LocalRecord, type OutboxEntry, type RecordKey, type Store, type WriteBatch } from './store.js';
export { diff, overlay, sameValue, unitsOf, type Diff } from './fields.js';
export { uploadDocument, uploadFingerprint, type UploadOptions } from './upload.js';
export { parseSSE, watchEvents, type ServerEvent } from './events.js';
export { uuidv7 } from './uuid.js';
export { errorCodes, limits } from './generated/spec.js';
export { recordTypes, type Change, type Conflict, type Fields, type Mutation, type MutationResult, type PullPage, type RecordType, type Records, type User, type WritableFields, type WritableType } from './wire.js';
export type { components, paths, operations } from './generated/openapi.js';
