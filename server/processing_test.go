package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/imagebomb"
	"github.com/fieldsync/fieldsync/internal/jobqueue"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// processed waits until processing has ended for a document (a thumbnail or a reason for none)
// or deadline passes, and returns its thumbnail key and processing_error.
func (e *upEnv) processed(t *testing.T, doc uuid.UUID, deadline time.Time) (*string, string) {
	t.Helper()
	for {
		var thumb *string
		var reason string
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT thumbnail_key, processing_error FROM documents WHERE id = $1`, doc).
			Scan(&thumb, &reason); err != nil {
			t.Fatal(err)
		}
		if thumb != nil || reason != "" {
			return thumb, reason
		}
		if time.Now().After(deadline) {
			var jobs []byte
			_ = e.db.Pool.QueryRow(context.Background(), `SELECT coalesce(jsonb_agg(jsonb_build_object('state', state, 'attempted_by', attempted_by,
				'errors', errors))::text, '') FROM river_job`).Scan(&jobs)
			t.Fatalf("document %s not processed by %s; jobs %s", doc, deadline.Format(time.TimeOnly), jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUploadedImageBombGetsNoThumbnail: small files that declare images whose decoding would take
// gigabytes (a 16-bit PNG, a progressive JPEG: what a probe sent) are uploaded over tus; their
// processing refuses them from their headers, without decoding them. Each document stays usable
// (uploaded, downloadable, reviewable), without a thumbnail, and says why to every device that
// syncs it. (The memory figures are BenchmarkImageBomb's, in package media.)
func TestUploadedImageBombGetsNoThumbnail(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	e.startJobs(t)
	c := e.newCase(t)
	proc := e.actor(t, e.branchID, "processor")
	bombs := map[string]struct {
		file          []byte
		width, height int
	}{
		"png 16-bit":       {imagebomb.PNG(8000, 6000), 8000, 6000},
		"jpeg progressive": {imagebomb.ProgressiveJPEG(8944, 8944), 8944, 8944},
	}
	docs := map[string]uuid.UUID{}
	for name, b := range bombs {
		if len(b.file) > 1<<20 {
			t.Fatalf("%s: %d bytes, not a small file", name, len(b.file))
		}
		docs[name] = e.newDocument(t, c, nil)
		e.upload(t, c.rep.token, docs[name], b.file)
	}
	e.command(t, c.rep.ident, sync.TypeTask, "update", c.task, map[string]any{"status": "accepted"}) // the claim goes to review

	pull := e.do(t, "GET", "/v1/sync/pull?limit=1000", c.rep.token, nil)
	expect(t, pull, http.StatusOK, "")
	for name, b := range bombs {
		doc := docs[name]
		thumb, reason := e.processed(t, doc, time.Now().Add(30*time.Second))
		if thumb != nil || reason != "image_too_large" {
			t.Errorf("%s: thumbnail %v, processing_error %q; want none, image_too_large", name, thumb, reason)
		}
		d := e.doc(t, doc)
		if d.Status != "uploaded" || d.Width == nil || *d.Width != b.width || *d.Height != b.height {
			t.Errorf("%s: document %+v, want uploaded, %dx%d", name, d, b.width, b.height)
		}
		expect(t, e.do(t, "GET", "/v1/documents/"+doc.String()+"/thumbnail", c.rep.token, nil), http.StatusNotFound, "no_thumbnail")
		if got := e.download(t, c.rep.token, doc, "content"); !bytes.Equal(got, b.file) {
			t.Errorf("%s: the downloaded file is not the uploaded one", name)
		}
		e.command(t, proc.ident, sync.TypeDocument, "update", doc, map[string]any{"status": "approved"})
	}

	// The reason syncs, as the rest of the document does.
	var page syncPage
	pull = e.do(t, "GET", "/v1/sync/pull?limit=1000", c.rep.token, nil)
	expect(t, pull, http.StatusOK, "")
	if err := json.Unmarshal(pull.body, &page); err != nil {
		t.Fatal(err)
	}
	for name, doc := range docs {
		data := wantUpsert(t, "the rep's pull", page.Changes, "document", doc)
		if data["processing_error"] != "image_too_large" || data["has_thumbnail"] != false || data["status"] != "approved" {
			t.Errorf("%s: the rep's device sees %v", name, data)
		}
	}
}

// TestProcessingOfAKilledReplicaIsFinishedByAnother: replica A takes a document's processing job
// and dies with it (its database connections cut mid-job, as by kill -9: the job stays "running",
// attempted by A). Replica B's job queue, with production's settings, gives the job back and
// finishes it within a minute of A taking it, not the hour of River's defaults.
func TestProcessingOfAKilledReplicaIsFinishedByAnother(t *testing.T) {
	t.Parallel()
	e := upSetup(t) // replica B: its job client starts after A's death
	proxy := newStoreProxy(t, e.s3.Endpoint)
	pool, kill := e.db.KillablePool(t, 6)
	_, jobsA, _ := e.replica(t, func(o *apptest.Setup) {
		o.S3.Endpoint, o.Deps.Pool, o.JobsID = proxy.ln.Addr().String(), pool, "replica-a"
	})
	proxy.set(2) // A's object store never answers: A's job hangs reading the file
	ctxA, cancelA := context.WithCancel(context.Background())
	if err := jobsA.Start(ctxA); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancelA()
		stopCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = jobsA.StopAndCancel(stopCtx) // a dead replica's client: whatever it says
	})

	c := e.newCase(t)
	photo, err := os.ReadFile("../media/testdata/photo_exif.jpg")
	if err != nil {
		t.Fatal(err)
	}
	doc := e.newDocument(t, c, nil)
	e.upload(t, c.rep.token, doc, photo)

	// A takes the job, and dies with it.
	var taken time.Time
	waitUntil(t, 10*time.Second, "replica A takes the job", func() bool {
		err := e.db.Pool.QueryRow(context.Background(), `SELECT attempted_at FROM river_job
			WHERE args->>'document_id' = $1 AND state = 'running' AND attempted_by = ARRAY['replica-a']`, doc.String()).Scan(&taken)
		return err == nil
	})
	kill()
	e.startJobs(t)

	thumb, reason := e.processed(t, doc, taken.Add(time.Minute))
	if thumb == nil || reason != "" {
		t.Fatalf("thumbnail %v, processing_error %q", thumb, reason)
	}
	t.Logf("thumbnail %s after A took the job (at most %s + the job's own time expected)", time.Since(taken).Round(time.Second), jobqueue.MaxRescueDelay)
	var by []string
	var errs []byte
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT attempted_by, errors::text FROM river_job WHERE args->>'document_id' = $1`,
		doc.String()).Scan(&by, &errs); err != nil {
		t.Fatal(err)
	}
	if len(by) < 2 || by[0] != "replica-a" || by[len(by)-1] == "replica-a" {
		t.Errorf("attempted by %v, want replica A then B", by)
	}
	if !strings.Contains(string(errs), "rescued") {
		t.Errorf("job errors %s, want River's rescue", errs)
	}
}

// waitUntil polls cond until it holds, or fails the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
