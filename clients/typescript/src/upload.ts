// Photo uploads through tus-js-client (docs/protocol.md §7): the document is created by push first,
// then its bytes go up with tus, resuming after every drop with HEAD + PATCH. The fingerprint tus
// finds a half-done upload by includes the document id, so one file attached to two documents
// never resumes the other's upload; the upload URLs are kept in the Store (per fingerprint), so a
// restarted app resumes too, and are forgotten once the upload is done.

import * as tus from 'tus-js-client';
import { FieldsyncError } from './errors.js';
import type { Session } from './session.js';
import type { Store } from './store.js';

export interface UploadOptions {
  fileName?: string;
  contentType?: string;
  /** Lowercase hex SHA-256 of the whole file: the server checks it on the last byte. */
  sha256?: string;
  /** Bytes per PATCH (one request for the whole file when unset). */
  chunkSize?: number;
  /** Pauses between attempts after a failure, in ms; the upload fails after the last one. */
  retryDelays?: number[];
  onProgress?: (sent: number, total: number) => void;
  signal?: AbortSignal;
}

/** The tus fingerprint of a document's bytes: the document id first. */
export function uploadFingerprint(documentId: string, size: number, sha256?: string): string {
  return `fieldsync:${documentId}:${size}:${sha256 ?? ''}`;
}

const prefix = 'tus:';

/** tus-js-client's URL storage over the Store's meta values. */
class StoreUrlStorage implements tus.UrlStorage {
  constructor(private readonly store: Store) {}
  async findAllUploads(): Promise<tus.PreviousUpload[]> {
    return []; // only looked up by fingerprint
  }
  async findUploadsByFingerprint(fp: string): Promise<tus.PreviousUpload[]> {
    const v = await this.store.getMeta(prefix + fp);
    return v ? [JSON.parse(v) as tus.PreviousUpload] : [];
  }
  async removeUpload(key: string): Promise<void> {
    await this.store.write({ meta: { [key]: undefined } });
  }
  async addUpload(fp: string, upload: tus.PreviousUpload): Promise<string> {
    const key = prefix + fp;
    await this.store.write({ meta: { [key]: JSON.stringify({ ...upload, urlStorageKey: key }) } });
    return key;
  }
}

/** The status and stable code of a failed tus request. */
function failure(err: Error | tus.DetailedError): { status: number; code?: string } {
  const res = (err as tus.DetailedError).originalResponse;
  if (!res) return { status: 0 };
  let code: string | undefined;
  try {
    code = (JSON.parse(res.getBody()) as { error?: { code?: string } }).error?.code;
  } catch {
    // not the protocol's shape
  }
  return { status: res.getStatus(), code };
}

/**
 * Uploads a document's bytes, resuming an earlier upload of the same document if one was left
 * half done. Resolves once the server has the whole file (or already had it).
 */
export async function uploadDocument(session: Session, store: Store, documentId: string, data: Uint8Array, o: UploadOptions = {}): Promise<void> {
  const file = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let refresh = false;
  await new Promise<void>((resolve, reject) => {
    const upload = new tus.Upload(file, {
      endpoint: session.url + '/v1/uploads/',
      metadata: {
        document_id: documentId,
        ...(o.fileName ? { filename: o.fileName } : {}),
        ...(o.contentType ? { content_type: o.contentType } : {}),
        ...(o.sha256 ? { sha256: o.sha256 } : {}),
      },
      fingerprint: async () => uploadFingerprint(documentId, file.byteLength, o.sha256),
      urlStorage: new StoreUrlStorage(store),
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      ...(o.chunkSize ? { chunkSize: o.chunkSize } : {}),
      retryDelays: o.retryDelays ?? [0, 500, 1000, 2000, 4000, 8000, 16000],
      onBeforeRequest: async (req) => {
        if (refresh) {
          refresh = false;
          await session.refresh();
        }
        for (const [k, v] of Object.entries(await session.headers())) req.setHeader(k, v);
      },
      onShouldRetry: (err) => {
        const f = failure(err);
        if (f.status === 401 && f.code === 'token_expired') return (refresh = true);
        // Network, the server, limits, a half-dead earlier request holding the upload (409):
        // retrying asks the server's offset first (HEAD), then carries on.
        return f.status === 0 || f.status >= 500 || [408, 409, 423, 429, 460].includes(f.status);
      },
      onProgress: o.onProgress ?? null,
      onSuccess: () => resolve(),
      onError: (err) => {
        const f = failure(err);
        if (f.code === 'document_already_uploaded') return resolve();
        reject(f.status ? new FieldsyncError(f.status, f.code ?? `http_${f.status}`, err.message) : err);
      },
    });
    o.signal?.addEventListener('abort', () => {
      upload.abort().catch(() => undefined);
      reject(o.signal!.reason);
    }, { once: true });
    upload
      .findPreviousUploads()
      .then((prev) => {
        if (prev.length) upload.resumeFromPreviousUpload(prev[0]!);
        upload.start();
      })
      .catch(reject);
  });
}
