// Package media stores the bytes of claim documents in S3-compatible object storage (minio-go) and
// will hold the resumable upload server and image processing. It owns its SQL and never imports
// the HTTP layer.
package media
