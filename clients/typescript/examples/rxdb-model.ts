// The example app's own RxDB collections, as it had them before fieldsync: keyed by `id`, with the
// server's `version` (both were there already in an app that synced these records).
export const appCollections = {
  tasks: {
    schema: {
      version: 0,
      primaryKey: 'id',
      type: 'object',
      properties: { id: { type: 'string', maxLength: 36 }, version: { type: 'number' }, title: { type: 'string' }, status: { type: 'string' }, checklist: { type: 'array' } },
      required: ['id'],
    },
  },
  customers: {
    schema: {
      version: 0,
      primaryKey: 'id',
      type: 'object',
      properties: { id: { type: 'string', maxLength: 36 }, version: { type: 'number' }, name: { type: 'string' }, phone: { type: 'string' } },
      required: ['id'],
    },
  },
} as const;
