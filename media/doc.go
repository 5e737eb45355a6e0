// Package media is the documents' bytes: resumable uploads (the tus 1.0.0 server of docs/protocol.md),
// the checks and completion of an upload, the background processing of photos (EXIF capture time
// and GPS, a thumbnail), and presigned downloads. It owns its SQL, writes documents only through
// the sync engine, and never imports the HTTP layer.
//
// As in tusd, three parts with small interfaces between them:
//
//   - package media/tus is the protocol: headers, offsets, checksums, creation, termination,
//     expiration, and the caps on requests in progress. It keeps uploads in a tus.Uploads and
//     returns its refusals as *fieldsync.Error values, which the HTTP layer maps to statuses with
//     every other error.
//   - this package is the uploads' state, the implementation of tus.Uploads (tusstore.go): rows of
//     the uploads table and S3 multipart uploads (upload.go, write.go, finish.go), the part
//     buffers (buffers.go), downloads and processing.
//   - ObjectStore is the object store behind them (objectstore.go); Store is it on S3-compatible
//     storage through minio-go (store.go).
//
// # Uploads without sticky sessions
//
// An upload's state is a row of the uploads table and objects in the store, never memory: the S3
// multipart upload the bytes go to, the parts stored so far, the trailing bytes too few for a part
// (S3 parts are at least 5 MiB, tus chunks any size) kept as a small object of their own and put in
// front of the next chunk, and crypto/sha256's marshalled state over every byte received. Any
// replica can therefore take up any upload, after a restart too.
//
// A PATCH claims the row (a short transaction holding the row lock), streams the body through a
// part buffer into the store, and commits the new offset, parts and hash state under the row lock
// again, but only if its claim still stands. Locking the row for the whole PATCH instead would keep
// a transaction open for as long as a phone takes to send its bytes, which would hold back every
// pull (see package sync) and tie up a database connection per upload. A newer request for the same
// upload takes the claim over at once, so a phone that reconnects is never locked out by its own
// half-dead request; the old request can then store nothing that counts: part numbers are never
// reused and trailing objects have keys of their own.
//
// # One client cannot hold the server
//
// Part buffers (5 MiB each) are few by design. A user, and each of their devices, may have only so
// many upload requests in progress (429 too_many_uploads beyond); a request waits for a buffer
// only so long (503 server_busy); and a body that sends nothing for the idle timeout is ended
// (408 body_idle_timeout) with what arrived kept, through a read deadline on the connection pushed
// forward at every read, so a stalled phone gives its buffer back and resumes from Upload-Offset.
//
// # Completion
//
// When the last byte is stored, the upload is checked (size, whole-file SHA-256 against the one
// the document declared, the type sniffed from the first bytes: JPEG, PNG, HEIC or PDF), the
// multipart upload is completed to a key the server made, and in one transaction the document is
// set uploaded through the sync engine and a processing job is queued (River). A completion that
// fails for want of the store or the database is finished later by any replica's cleanup loop.
// The document's other unfinished uploads (a creation whose answer the phone never got) are then
// dropped with their multipart uploads.
//
// # Processing
//
// The job records the photo's EXIF (capture time, GPS) and dimensions, then its thumbnail. A small
// file can declare a huge image, and what decoding it takes depends on more than its pixels (a
// 16-bit PNG decodes to 8 bytes a pixel, a progressive JPEG keeps 4 bytes of coefficients a
// sample), so the bytes image/jpeg, image/png and the scaler will allocate are computed from the
// header first, and decoding takes them from a budget shared by the replica's jobs
// (Options.MaxDecodeBytes). An image that alone would exceed it, or is not decodable, gets no
// thumbnail; its document says why (processing_error) and stays usable.
package media
