// The steps of a conformance device that are the client's own whatever stores its records, shared
// by the drivers of this package (the plain client, WatermelonDB, RxDB): each adds how its app
// syncs, reads and edits.

import type { Client } from '../client.js';
import type { Store } from '../store.js';
import type { Device } from './driver.js';

/** A cursor no server made: the next pull is refused with 410 cursor_expired. */
const expiredCursor = 'expired-by-the-conformance-kit';

/** Retries of an upload over a link that drops, quicker than an app's defaults, for the kit. */
const uploadRetryDelays = [0, 200, 500, 1000, 1000, 2000, 2000];

export function clientSteps(client: Client, store: Store): Pick<Device, 'login' | 'ids' | 'refused' | 'expireCursor' | 'plant' | 'upload'> {
  return {
    async login(login, password) {
      const u = await client.login(login, password);
      return { id: u.id, role: u.role };
    },
    ids: (type) => store.listIds(type),
    async refused() {
      return (await client.rejected()).map((r) => ({ mutationId: r.mutation.id, entityId: r.mutation.entity_id, code: r.result.error?.code ?? '' }));
    },
    async expireCursor() {
      await store.write({ cursor: expiredCursor });
    },
    async plant(type, fields) {
      await store.write({ put: [{ type, id: fields.id, version: fields.version, fields, pending: {} }] });
    },
    upload: (documentId, bytes, o) => client.upload(documentId, bytes, { ...o, retryDelays: uploadRetryDelays }),
  };
}
