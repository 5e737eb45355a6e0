package loadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
)

// uploadConcurrency is how many files go up at once, through the API, tusd and straight to the
// store.
const uploadConcurrency = 2

// putObjectThreads is how many parts of one file the PutObject baseline stores at once
// (minio-go's default).
const putObjectThreads = 4

// pdfFile returns n bytes that sniff as a PDF: a document type the server keeps as it is (a
// photo would also queue a thumbnail job, work that follows the upload rather than being part
// of it).
func pdfFile(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>11)
	}
	copy(b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	return b
}

// upload measures documents going up through the API (tus: a creation, then the whole file in
// one PATCH with its SHA-256 as Upload-Checksum, as tus-js-client sends a file: the server checks
// it, sniffs the type and hashes the file) against two baselines with as many at once, for the
// same time, to the same bucket of the same store: minio-go's PutObject of the same bytes,
// unsigned, in parts of our size stored in parallel (the store's own speed), and tusd v2 with
// its S3 store, sent the same requests by the same client.
func (r *run) upload(ctx context.Context) error {
	branch, err := r.seed.branch(ctx, "Bench upload")
	if err != nil {
		return err
	}
	reps, err := r.seed.users(ctx, branch, "rep", 1)
	if err != nil {
		return err
	}
	w, err := r.seed.tasks(ctx, branch, []uuid.UUID{reps[0].ID})
	if err != nil {
		return err
	}
	clients, err := r.login(ctx, reps, 1)
	if err != nil {
		return err
	}
	c := clients[0]
	file := pdfFile(r.o.UploadBytes)
	sum := sha256.Sum256(file)

	// Every document is created before the clock starts: as many as the upload could take at
	// 300 MB/s, more than loopback to a store on the same machine carries.
	docs := make(chan uuid.UUID, int(r.o.Phase.Seconds()*300e6)/len(file)+16)
	var ms []client.Mutation
	for range cap(docs) {
		id := uuid.Must(uuid.NewV7())
		ms = append(ms, client.Mutation{ID: uuid.Must(uuid.NewV7()), Type: "document", Op: "create", EntityID: id, Fields: map[string]any{
			"claim_id": w.Claims[0], "task_id": w.Tasks[0], "kind": sync.DocumentDischargeSummary, "file_name": "discharge.pdf",
			"content_type": "application/pdf", "size_bytes": len(file), "sha256": hex.EncodeToString(sum[:]),
		}})
		docs <- id
	}
	for len(ms) > 0 {
		batch := ms[:min(len(ms), 1000)]
		ms = ms[len(batch):]
		results, err := c.Push(ctx, batch)
		if err != nil {
			return fmt.Errorf("create documents: %w", err)
		}
		for _, res := range results {
			if res.Status != "applied" {
				return fmt.Errorf("create a document: %s %+v", res.Status, res.Error)
			}
		}
	}

	p := r.begin()
	wait := r.profile(ctx, "upload", r.o.Phase)
	ops, elapsed, err := timed(ctx, uploadConcurrency, r.o.Phase, func(ctx context.Context, _ int) error {
		var doc uuid.UUID
		select {
		case doc = <-docs:
		default:
			return fmt.Errorf("upload: out of documents")
		}
		u, err := c.CreateUpload(ctx, doc, int64(len(file)), "discharge.pdf")
		if err != nil {
			return fmt.Errorf("create upload: %w", err)
		}
		off, err := c.SendChunk(ctx, u, 0, file)
		if err != nil {
			return fmt.Errorf("send the file: %w", err)
		}
		if off != int64(len(file)) {
			return fmt.Errorf("upload ended at offset %d of %d", off, len(file))
		}
		return nil
	})
	usage := r.end(p)
	wait()
	if err != nil {
		return err
	}
	apiRate := float64(ops) * float64(len(file)) / 1e6 / elapsed.Seconds()

	store, err := media.NewStore(r.t.S3)
	if err != nil {
		return err
	}
	var n atomic.Int64
	baseOps, baseElapsed, err := timed(ctx, uploadConcurrency, r.o.Phase, func(ctx context.Context, _ int) error {
		key := fmt.Sprintf("bench-direct/%d-%s", n.Add(1), uuid.NewString())
		_, err := store.Client().PutObject(ctx, r.t.S3.Bucket, key, bytes.NewReader(file), int64(len(file)),
			minio.PutObjectOptions{ContentType: "application/pdf", DisableContentSha256: true,
				PartSize: media.PartSize, NumThreads: putObjectThreads})
		return err
	})
	if err != nil {
		return fmt.Errorf("PutObject: %w", err)
	}
	baseRate := float64(baseOps) * float64(len(file)) / 1e6 / baseElapsed.Seconds()

	// tusd, with the same client code, file, chunk (the whole file in one PATCH) and part size.
	tusd, err := startTusd(r.t.S3, media.PartSize)
	if err != nil {
		return err
	}
	defer tusd.Close(context.WithoutCancel(ctx)) //nolint:errcheck
	tc := client.New(tusd.URL, r.http, client.Device{ID: uuid.Must(uuid.NewV7()), Platform: "android"})
	tusdOps, tusdElapsed, err := timed(ctx, uploadConcurrency, r.o.Phase, func(ctx context.Context, _ int) error {
		u, err := tc.CreateUpload(ctx, uuid.Must(uuid.NewV7()), int64(len(file)), "discharge.pdf")
		if err != nil {
			return fmt.Errorf("tusd: create upload: %w", err)
		}
		off, err := tc.SendChunk(ctx, u, 0, file)
		if err != nil {
			return fmt.Errorf("tusd: send the file: %w", err)
		}
		if off != int64(len(file)) {
			return fmt.Errorf("tusd: upload ended at offset %d of %d", off, len(file))
		}
		return nil
	})
	if err != nil {
		return err
	}
	tusdRate := float64(tusdOps) * float64(len(file)) / 1e6 / tusdElapsed.Seconds()

	r.report.Upload = Throughput{Unit: "MB/s", API: round(apiRate, 1), Baseline: round(baseRate, 1), Ratio: round(apiRate/baseRate, 3),
		APIName:     "tus: POST /v1/uploads/, one PATCH with Upload-Checksum sha256",
		BaseName:    fmt.Sprintf("minio-go PutObject, unsigned payload, %s parts, %d at once", size(media.PartSize), putObjectThreads),
		Concurrency: uploadConcurrency, Size: int64(len(file)), APIOps: ops, BaseOps: baseOps, Server: usage}
	r.report.Upload.perUnit(float64(ops) * float64(len(file)) / 1e6)
	r.report.UploadTusd = Throughput{Unit: "MB/s", API: round(apiRate, 1), Baseline: round(tusdRate, 1), Ratio: round(apiRate/tusdRate, 3),
		APIName:     r.report.Upload.APIName,
		BaseName:    fmt.Sprintf("tusd v2 (s3store, aws-sdk-go-v2), the same client and PATCH, %s parts", size(media.PartSize)),
		Concurrency: uploadConcurrency, Size: int64(len(file)), APIOps: ops, BaseOps: tusdOps, Server: usage,
		ServerCPUPerUnit: r.report.Upload.ServerCPUPerUnit}
	r.progress("upload: tusd %.0f MB/s (ours %.0f%% of it)", tusdRate, 100*apiRate/tusdRate)
	r.progress("upload: %.0f MB/s through the API, %.0f MB/s with PutObject (%.0f%%)", apiRate, baseRate, 100*apiRate/baseRate)
	return nil
}
