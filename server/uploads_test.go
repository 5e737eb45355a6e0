package server_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/riverqueue/river"
)

// The documents' upload and download tests: tus over HTTP against the real server, PostgreSQL
// and MinIO, as the phones' tus clients use it.

// upEnv is an uploads test's world: the shared bundle (accounts, database, branch) with a server
// that has the documents service, over a bucket of its own.
type upEnv struct {
	*bundle
	s3    media.Config
	minio *minio.Client
	svc   *media.Service
	jobs  *river.Client[pgx.Tx]
}

// upSetup builds the service with the documents service over a bucket of its own (apptest.New),
// its settings changed by opts, and a branch. Its background workers stay stopped: a test runs
// the jobs when it wants them (startJobs). It takes testing.TB, unlike setup, for the benchmarks.
func upSetup(t testing.TB, opts ...func(*apptest.Setup)) *upEnv {
	t.Helper()
	s3 := testenv.S3(t)
	a := apptest.New(t, append([]func(*apptest.Setup){uploadsOn(s3)}, opts...)...)
	e := &upEnv{bundle: newBundle(t, a), s3: s3, svc: a.Media, jobs: a.Jobs}
	store, err := media.NewStore(s3)
	if err != nil {
		t.Fatal(err)
	}
	e.minio = store.Client()
	return e
}

// uploadsOn is an apptest option: the documents service over the bucket of s3, the server's
// workers stopped, a 64 KiB cap on JSON bodies and 10 s on each call to the store.
func uploadsOn(s3 media.Config) func(*apptest.Setup) {
	return func(s *apptest.Setup) {
		s.S3, s.Idle, s.MaxBodyBytes, s.StoreTimeout = s3, true, 64<<10, 10*time.Second
	}
}

// replica builds another instance of the service (engine, job client, documents service, HTTP
// server) over the same database and bucket, as another replica behind a load balancer.
func (e *upEnv) replica(t testing.TB, opts ...func(*apptest.Setup)) (*media.Service, *river.Client[pgx.Tx], *httptest.Server) {
	t.Helper()
	a := e.bundle.replica(t, append([]func(*apptest.Setup){uploadsOn(e.s3)}, opts...)...)
	return a.Media, a.Jobs, a.HTTP
}

// startJobs runs the job client's workers until the test ends.
func (e *upEnv) startJobs(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	if err := e.jobs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		_ = e.jobs.Stop(stopCtx)
	})
}

// upActor is a signed-in user.
type upActor struct {
	id    uuid.UUID
	token string
	ident *fieldsync.Identity
}

func (e *upEnv) actor(t testing.TB, branch uuid.UUID, role string) *upActor {
	t.Helper()
	login := role + "-" + uuid.NewString()[:8]
	nu := account.NewUser{BranchID: branch, Role: role, Login: login, Name: "User " + login, Password: testPassword}
	if role == "rep" {
		nu.RepKind = "hospital"
	}
	id, err := e.accounts.CreateUser(context.Background(), nu)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := e.accounts.Login(context.Background(), account.LoginRequest{Login: login, Password: testPassword,
		Device: account.Device{ID: uuid.New(), Platform: "android", Name: "Pixel"}}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return &upActor{id: id, token: tokens.AccessToken, ident: &fieldsync.Identity{UserID: id, Role: role, BranchID: branch}}
}

func raw(v any) json.RawMessage {
	data, _ := json.Marshal(v)
	return data
}

func (e *upEnv) command(t testing.TB, who *fieldsync.Identity, typ, op string, id uuid.UUID, fields map[string]any) {
	t.Helper()
	m := sync.Mutation{Type: typ, Op: op, EntityID: id, Fields: map[string]json.RawMessage{}}
	for k, v := range fields {
		m.Fields[k] = raw(v)
	}
	if _, err := e.engine.Command(context.Background(), who, m); err != nil {
		t.Fatalf("%s %s: %v", op, typ, err)
	}
}

// upCase is a claim with a task assigned to a rep, in the test branch.
type upCase struct {
	rep, mgr *upActor
	claim    uuid.UUID
	task     uuid.UUID
}

func (e *upEnv) newCase(t testing.TB) *upCase {
	t.Helper()
	return e.newCaseFor(t, e.actor(t, e.branchID, "rep"))
}

// newCaseFor is newCase with the task assigned to rep.
func (e *upEnv) newCaseFor(t testing.TB, rep *upActor) *upCase {
	t.Helper()
	c := &upCase{rep: rep, mgr: e.actor(t, e.branchID, "manager")}
	customer := uuid.New()
	e.command(t, c.mgr.ident, sync.TypeCustomer, "create", customer, map[string]any{"name": "Customer"})
	claim, err := e.engine.ReportClaim(context.Background(), c.mgr.ident, sync.ClaimReport{CustomerID: customer,
		PolicyNumber: "POL-1", Kind: "accident", Description: "Fell."})
	if err != nil {
		t.Fatal(err)
	}
	var cl struct{ ID uuid.UUID }
	if err := json.Unmarshal(claim.Claim, &cl); err != nil {
		t.Fatal(err)
	}
	c.claim, c.task = cl.ID, uuid.New()
	e.command(t, c.mgr.ident, sync.TypeTask, "create", c.task, map[string]any{"claim_id": c.claim, "kind": "document_collection",
		"title": "Collect", "assignee_id": c.rep.id})
	return c
}

// newDocument has the case's rep create a document pending upload, with extra declared fields.
func (e *upEnv) newDocument(t testing.TB, c *upCase, extra map[string]any) uuid.UUID {
	t.Helper()
	id := uuid.New()
	f := map[string]any{"claim_id": c.claim, "task_id": c.task, "kind": "invoice", "file_name": "invoice.jpg", "content_type": "image/jpeg"}
	for k, v := range extra {
		f[k] = v
	}
	e.command(t, c.rep.ident, sync.TypeDocument, "create", id, f)
	return id
}

// docRow is a document as stored.
type docRow struct {
	Status, ContentType, ReviewNote string
	ObjectKey, ThumbnailKey, SHA256 *string
	SizeBytes                       *int64
	Width, Height                   *int
	CapturedAt                      *time.Time
	Lat, Lng                        *float64
	Version                         int64
}

func (e *upEnv) doc(t *testing.T, id uuid.UUID) docRow {
	t.Helper()
	var d docRow
	err := e.db.Pool.QueryRow(context.Background(), `SELECT status, content_type, review_note, object_key, thumbnail_key, sha256, size_bytes,
		width, height, captured_at, gps_lat, gps_lng, version FROM documents WHERE id = $1`, id).
		Scan(&d.Status, &d.ContentType, &d.ReviewNote, &d.ObjectKey, &d.ThumbnailKey, &d.SHA256, &d.SizeBytes, &d.Width, &d.Height,
			&d.CapturedAt, &d.Lat, &d.Lng, &d.Version)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The tus client side.

// tusDo sends a tus request to url (absolute) and reads the whole answer.
func tusDo(t *testing.T, method, url, token string, headers map[string]string, body io.Reader, length int64) (response, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	if body == nil {
		req.ContentLength = 0
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/offset+octet-stream")
	}
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: res.StatusCode, header: res.Header, body: data}, nil
}

func mustTus(t *testing.T, method, url, token string, headers map[string]string, body []byte) response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := tusDo(t, method, url, token, headers, rd, int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func metadata(doc uuid.UUID, extra ...string) string {
	md := "document_id " + base64.StdEncoding.EncodeToString([]byte(doc.String()))
	for i := 0; i+1 < len(extra); i += 2 {
		md += "," + extra[i] + " " + base64.StdEncoding.EncodeToString([]byte(extra[i+1]))
	}
	return md
}

// create starts an upload of length bytes for doc on base and returns its URL.
func (e *upEnv) create(t *testing.T, base, token string, doc uuid.UUID, length int) string {
	t.Helper()
	r := mustTus(t, "POST", base+"/v1/uploads/", token, map[string]string{"Upload-Length": strconv.Itoa(length), "Upload-Metadata": metadata(doc)}, nil)
	expect(t, r, http.StatusCreated, "")
	loc := r.header.Get("Location")
	if !strings.HasPrefix(loc, base+"/v1/uploads/") {
		t.Fatalf("Location %q is not an absolute upload URL on %s", loc, base)
	}
	if r.header.Get("Upload-Expires") == "" || r.header.Get("Tus-Resumable") != "1.0.0" {
		t.Fatalf("creation headers: %v", r.header)
	}
	return loc
}

func patch(t *testing.T, url, token string, offset int, chunk []byte, headers ...string) response {
	t.Helper()
	h := map[string]string{"Upload-Offset": strconv.Itoa(offset)}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return mustTus(t, "PATCH", url, token, h, chunk)
}

func offsetOf(t *testing.T, url, token string) int {
	t.Helper()
	r := mustTus(t, "HEAD", url, token, nil, nil)
	expect(t, r, http.StatusOK, "")
	n, err := strconv.Atoi(r.header.Get("Upload-Offset"))
	if err != nil {
		t.Fatalf("Upload-Offset %q", r.header.Get("Upload-Offset"))
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("HEAD Cache-Control %q", r.header.Get("Cache-Control"))
	}
	return n
}

// upload sends the whole file in one PATCH and expects it accepted.
func (e *upEnv) upload(t *testing.T, token string, doc uuid.UUID, file []byte) string {
	t.Helper()
	url := e.create(t, e.srv.URL, token, doc, len(file))
	r := patch(t, url, token, 0, file)
	expect(t, r, http.StatusNoContent, "")
	if r.header.Get("Upload-Offset") != strconv.Itoa(len(file)) {
		t.Fatalf("Upload-Offset %q after the whole file", r.header.Get("Upload-Offset"))
	}
	return url
}

// jpegFile is n bytes that sniff as a JPEG: a JPEG's first bytes, then noise from seed.
func jpegFile(n int, seed uint64) []byte {
	data := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, seed))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	copy(data, "\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
	return data
}

func (e *upEnv) object(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := e.minio.GetObject(context.Background(), e.s3.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data
}

// objects lists every object key of the bucket.
func (e *upEnv) objects(t *testing.T) []string {
	t.Helper()
	var keys []string
	for o := range e.minio.ListObjects(context.Background(), e.s3.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	return keys
}

// multipartUploads counts the unfinished S3 multipart uploads of the bucket.
func (e *upEnv) multipartUploads(t *testing.T) int {
	t.Helper()
	n := 0
	for u := range e.minio.ListIncompleteUploads(context.Background(), e.s3.Bucket, "", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		n++
	}
	return n
}

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// cutReader sends data and then fails, as a connection that drops.
type cutReader struct {
	r *bytes.Reader
}

var errCut = errors.New("connection dropped")

func (c *cutReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		return n, errCut
	}
	return n, err
}

// The tests.

func TestUploadDiscovery(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	for _, path := range []string{"/v1/uploads", "/v1/uploads/", "/v1/uploads/" + uuid.NewString()} {
		r := mustTus(t, "OPTIONS", e.srv.URL+path, "", map[string]string{"Tus-Resumable": ""}, nil)
		expect(t, r, http.StatusNoContent, "")
		for h, want := range map[string]string{"Tus-Version": "1.0.0", "Tus-Resumable": "1.0.0",
			"Tus-Extension": "creation,creation-with-upload,checksum,expiration,termination",
			"Tus-Max-Size":  strconv.Itoa(media.DefaultMaxUploadBytes), "Tus-Checksum-Algorithm": "sha1,sha256"} {
			if got := r.header.Get(h); got != want {
				t.Errorf("OPTIONS %s: %s %q, want %q", path, h, got, want)
			}
		}
	}
	// Everything else needs Tus-Resumable 1.0.0 and credentials.
	c := e.newCase(t)
	doc := e.newDocument(t, c, nil)
	r := mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Tus-Resumable": "0.2.2", "Upload-Length": "10",
		"Upload-Metadata": metadata(doc)}, nil)
	expect(t, r, http.StatusPreconditionFailed, "tus_version_unsupported")
	if r.header.Get("Tus-Version") != "1.0.0" {
		t.Errorf("412 without Tus-Version: %v", r.header)
	}
	expect(t, mustTus(t, "POST", e.srv.URL+"/v1/uploads", "", map[string]string{"Upload-Length": "10", "Upload-Metadata": metadata(doc)}, nil),
		http.StatusUnauthorized, "token_invalid")
	expect(t, mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Upload-Length": "10"}, nil), http.StatusBadRequest, "invalid_header")
}

// TestUploadResumesAcrossInterruptionsAndReplicas uploads a 12 MiB file over a link that drops at
// random points, resuming each time as a tus client does (HEAD, then PATCH from the offset),
// alternately through two server instances over the same database and bucket, and in chunks of
// random sizes: the file stored is the file sent, byte for byte.
func TestUploadResumesAcrossInterruptionsAndReplicas(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	_, _, second := e.replica(t)
	servers := []string{e.srv.URL, second.URL}
	c := e.newCase(t)
	file := jpegFile(12<<20+12345, 7)
	doc := e.newDocument(t, c, map[string]any{"sha256": sha256Hex(file), "size_bytes": len(file)})

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	url := e.create(t, servers[0], c.rep.token, doc, len(file))
	id := url[strings.LastIndex(url, "/"):]
	interruptions, offset := 0, 0
	for attempt := 0; offset < len(file); attempt++ {
		if attempt > 200 {
			t.Fatalf("no end after %d attempts; offset %d of %d", attempt, offset, len(file))
		}
		base := servers[rng.IntN(2)] + "/v1/uploads"
		offset = offsetOf(t, base+id, c.rep.token)
		rest := len(file) - offset
		switch mode := rng.IntN(3); {
		case mode == 0 && rest > 1 && interruptions < 12:
			// The link drops partway.
			cut := offset + 1 + rng.IntN(rest-1)
			interruptions++
			r, err := tusDo(t, "PATCH", base+id, c.rep.token, map[string]string{"Upload-Offset": strconv.Itoa(offset)},
				&cutReader{bytes.NewReader(file[offset:cut])}, int64(rest))
			// The server may answer before reading the body (a 409 when an earlier dropped
			// request committed meanwhile); it must never take a cut body as whole.
			if err == nil && r.status != http.StatusConflict {
				t.Fatalf("a dropped request was answered %d: %s", r.status, r.body)
			}
			// The server learns of the drop a moment after the client.
			time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
		case mode == 1:
			// A small chunk, as TUSKit sends by default.
			n := min(rest, 100<<10+rng.IntN(1<<20))
			r := patch(t, base+id, c.rep.token, offset, file[offset:offset+n])
			if r.status == http.StatusConflict {
				continue // a request that dropped committed meanwhile: HEAD again
			}
			expect(t, r, http.StatusNoContent, "")
		default:
			r := patch(t, base+id, c.rep.token, offset, file[offset:])
			if r.status == http.StatusConflict {
				continue
			}
			expect(t, r, http.StatusNoContent, "")
			offset = len(file)
		}
	}
	t.Logf("%d interruptions", interruptions)
	d := e.doc(t, doc)
	if d.Status != "uploaded" || d.ObjectKey == nil || *d.SHA256 != sha256Hex(file) || *d.SizeBytes != int64(len(file)) || d.ContentType != "image/jpeg" {
		t.Fatalf("document after upload: %+v", d)
	}
	if !strings.HasPrefix(*d.ObjectKey, "documents/"+doc.String()+"/") {
		t.Errorf("object key %q is not the server's", *d.ObjectKey)
	}
	if got := e.object(t, *d.ObjectKey); !bytes.Equal(got, file) {
		t.Fatalf("stored %d bytes (sha256 %s), sent %d (%s)", len(got), sha256Hex(got), len(file), sha256Hex(file))
	}
	// Nothing is left behind: no trailing objects, no unfinished multipart upload.
	if keys := e.objects(t); len(keys) != 1 {
		t.Errorf("bucket holds %v, want only the document", keys)
	}
	if n := e.multipartUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
	// A client retrying the last PATCH, or asking, is told it is complete.
	if got := offsetOf(t, servers[1]+"/v1/uploads"+id, c.rep.token); got != len(file) {
		t.Errorf("HEAD after completion: offset %d", got)
	}
	r := patch(t, servers[0]+"/v1/uploads"+id, c.rep.token, len(file), []byte{})
	expect(t, r, http.StatusNoContent, "")
}

func TestUploadChecksum(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	file := jpegFile(6<<20, 3)
	doc := e.newDocument(t, c, nil)
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	chunk := file[:5<<20+100]

	wrong := sha256.Sum256(append([]byte{1}, chunk...))
	r := patch(t, url, c.rep.token, 0, chunk, "Upload-Checksum", "sha256 "+base64.StdEncoding.EncodeToString(wrong[:]))
	expect(t, r, 460, "checksum_mismatch")
	if got := offsetOf(t, url, c.rep.token); got != 0 {
		t.Fatalf("offset %d after a checksum mismatch, want 0", got)
	}
	if keys := e.objects(t); len(keys) != 0 {
		t.Fatalf("a mismatched chunk left objects: %v", keys)
	}
	expect(t, patch(t, url, c.rep.token, 0, chunk, "Upload-Checksum", "md5 1B2M2Y8AsgTpgAmY7PhCfg=="), http.StatusBadRequest, "checksum_algorithm_unsupported")

	right := sha256.Sum256(chunk)
	r = patch(t, url, c.rep.token, 0, chunk, "Upload-Checksum", "sha256 "+base64.StdEncoding.EncodeToString(right[:]))
	expect(t, r, http.StatusNoContent, "")
	sum1 := sha1.Sum(file[len(chunk):])
	r = patch(t, url, c.rep.token, len(chunk), file[len(chunk):], "Upload-Checksum", "sha1 "+base64.StdEncoding.EncodeToString(sum1[:]))
	expect(t, r, http.StatusNoContent, "")
	if d := e.doc(t, doc); d.Status != "uploaded" || *d.SHA256 != sha256Hex(file) {
		t.Fatalf("document %+v", d)
	}
}

func TestUploadOffsetMismatch(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	file := jpegFile(300<<10, 4)
	url := e.create(t, e.srv.URL, c.rep.token, e.newDocument(t, c, nil), len(file))
	expect(t, patch(t, url, c.rep.token, 0, file[:1000]), http.StatusNoContent, "")
	r := patch(t, url, c.rep.token, 500, file[500:2000])
	expect(t, r, http.StatusConflict, "offset_mismatch")
	var body struct {
		Error struct{ Details map[string]any } `json:"error"`
	}
	r.json(t, &body)
	if body.Error.Details["offset"] != float64(1000) {
		t.Errorf("409 details %v, want offset 1000", body.Error.Details)
	}
	expect(t, patch(t, url, c.rep.token, 0, []byte{}), http.StatusConflict, "offset_mismatch")
	expect(t, patch(t, url, c.rep.token, 1000, file[1000:], "Upload-Offset", "-1"), http.StatusBadRequest, "invalid_header")
	expect(t, patch(t, url, c.rep.token, 1000, file[1000:], "Content-Type", "application/json"), http.StatusUnsupportedMediaType, "unsupported_media_type")
	expect(t, patch(t, url, c.rep.token, 1000, file[1000:]), http.StatusNoContent, "")
}

// TestUploadIsTheUploadersOnly: another user can neither create an upload for someone's document
// nor read, resume or end their upload, even knowing its URL.
func TestUploadIsTheUploadersOnly(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	other := e.actor(t, e.branchID, "rep")
	doc := e.newDocument(t, c, nil)
	file := jpegFile(2000, 5)

	for _, who := range []*upActor{other, c.mgr} {
		r := mustTus(t, "POST", e.srv.URL+"/v1/uploads", who.token, map[string]string{"Upload-Length": "2000", "Upload-Metadata": metadata(doc)}, nil)
		expect(t, r, http.StatusForbidden, "forbidden")
	}
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	expect(t, patch(t, url, c.rep.token, 0, file[:1000]), http.StatusNoContent, "")
	for _, who := range []*upActor{other, c.mgr} {
		expect(t, mustTus(t, "HEAD", url, who.token, nil, nil), http.StatusNotFound, "")
		expect(t, patch(t, url, who.token, 1000, file[1000:]), http.StatusNotFound, "upload_not_found")
		expect(t, mustTus(t, "DELETE", url, who.token, nil, nil), http.StatusNotFound, "upload_not_found")
	}
	if got := offsetOf(t, url, c.rep.token); got != 1000 {
		t.Fatalf("offset %d after others' attempts, want 1000", got)
	}
	expect(t, mustTus(t, "HEAD", e.srv.URL+"/v1/uploads/"+uuid.NewString(), c.rep.token, nil, nil), http.StatusNotFound, "")
	expect(t, mustTus(t, "HEAD", e.srv.URL+"/v1/uploads/not-a-uuid", c.rep.token, nil, nil), http.StatusNotFound, "")

	// The uploader ends it: its bytes go, the document stays pending.
	expect(t, mustTus(t, "DELETE", url, c.rep.token, nil, nil), http.StatusNoContent, "")
	expect(t, mustTus(t, "HEAD", url, c.rep.token, nil, nil), http.StatusNotFound, "")
	if keys := e.objects(t); len(keys) != 0 {
		t.Errorf("a terminated upload left %v", keys)
	}
	if n := e.multipartUploads(t); n != 0 {
		t.Errorf("a terminated upload left %d multipart uploads", n)
	}
	if d := e.doc(t, doc); d.Status != "pending_upload" {
		t.Errorf("document %s after termination", d.Status)
	}
}

func TestUploadTooLarge(t *testing.T) {
	t.Parallel()
	e := upSetup(t, func(o *apptest.Setup) { o.MaxUploadBytes = 1 << 20 })
	c := e.newCase(t)
	doc := e.newDocument(t, c, nil)
	r := mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Upload-Length": strconv.Itoa(1<<20 + 1), "Upload-Metadata": metadata(doc)}, nil)
	expect(t, r, http.StatusRequestEntityTooLarge, "upload_too_large")

	// A body past the upload's length, with and without Content-Length.
	file := jpegFile(1<<20, 6)
	url := e.create(t, e.srv.URL, c.rep.token, doc, 1000)
	expect(t, patch(t, url, c.rep.token, 0, file[:1001]), http.StatusRequestEntityTooLarge, "upload_too_large")
	res, err := tusDo(t, "PATCH", url, c.rep.token, map[string]string{"Upload-Offset": "0"}, io.MultiReader(bytes.NewReader(file[:2000])), -1)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, res, http.StatusRequestEntityTooLarge, "upload_too_large")
	if d := e.doc(t, doc); d.Status != "pending_upload" {
		t.Errorf("document %s", d.Status)
	}
	// The largest allowed file goes through, past the API's 64 KiB body limit.
	expect(t, mustTus(t, "DELETE", url, c.rep.token, nil, nil), http.StatusNoContent, "")
	e.upload(t, c.rep.token, doc, file)
}

// TestUploadDisguisedExecutableIsRefused: an executable named photo.jpg and declared image/jpeg is
// refused by what its bytes are, and removed; the document stays pending.
func TestUploadDisguisedExecutableIsRefused(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	doc := e.newDocument(t, c, map[string]any{"file_name": "photo.jpg", "content_type": "image/jpeg"})
	exe := append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), jpegFile(8<<20, 8)[20:]...)
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(exe))
	r := patch(t, url, c.rep.token, 0, exe, "Upload-Metadata", metadata(doc, "filename", "photo.jpg", "content_type", "image/jpeg"))
	expect(t, r, http.StatusUnsupportedMediaType, "unsupported_content_type")
	expect(t, mustTus(t, "HEAD", url, c.rep.token, nil, nil), http.StatusNotFound, "")
	if d := e.doc(t, doc); d.Status != "pending_upload" || d.ObjectKey != nil {
		t.Errorf("document after a refused file: %+v", d)
	}
	if keys := e.objects(t); len(keys) != 0 {
		t.Errorf("the refused file left %v", keys)
	}
	if n := e.multipartUploads(t); n != 0 {
		t.Errorf("the refused file left %d multipart uploads", n)
	}
}

func TestUploadDeclaredSHA256IsChecked(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	file := jpegFile(70<<10, 9)
	doc := e.newDocument(t, c, map[string]any{"sha256": sha256Hex([]byte("other bytes"))})
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	expect(t, patch(t, url, c.rep.token, 0, file), http.StatusBadRequest, "sha256_mismatch")
	if d := e.doc(t, doc); d.Status != "pending_upload" {
		t.Errorf("document %s after a mismatched file", d.Status)
	}
	if keys := e.objects(t); len(keys) != 0 {
		t.Errorf("the mismatched file left %v", keys)
	}
}

// TestUploadExpiryAbortsTheMultipartUpload: an abandoned upload expires; the cleanup removes its
// S3 multipart upload and trailing bytes, and the upload is gone.
func TestUploadExpiryAbortsTheMultipartUpload(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	file := jpegFile(12<<20, 10)
	url := e.create(t, e.srv.URL, c.rep.token, e.newDocument(t, c, nil), len(file))
	expires, err := http.ParseTime(mustTus(t, "HEAD", url, c.rep.token, nil, nil).header.Get("Upload-Expires"))
	if err != nil || time.Until(expires) < 71*time.Hour {
		t.Fatalf("Upload-Expires %v (%v), want about 72 hours ahead", expires, err)
	}
	expect(t, patch(t, url, c.rep.token, 0, file[:6<<20]), http.StatusNoContent, "") // a part and a trailing object
	if n := e.multipartUploads(t); n != 1 {
		t.Fatalf("%d multipart uploads, want 1", n)
	}
	if keys := e.objects(t); len(keys) != 1 || !strings.HasPrefix(keys[0], "uploads/") {
		t.Fatalf("objects %v, want one trailing object", keys)
	}

	id := url[strings.LastIndex(url, "/")+1:]
	if _, err := e.db.Pool.Exec(context.Background(), `UPDATE uploads SET expires_at = now() - interval '1 second' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	expect(t, mustTus(t, "HEAD", url, c.rep.token, nil, nil), http.StatusGone, "")
	expect(t, patch(t, url, c.rep.token, 6<<20, file[6<<20:]), http.StatusGone, "upload_expired")
	if err := e.svc.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := e.multipartUploads(t); n != 0 {
		t.Errorf("%d multipart uploads after cleanup", n)
	}
	if keys := e.objects(t); len(keys) != 0 {
		t.Errorf("objects after cleanup: %v", keys)
	}
	expect(t, mustTus(t, "HEAD", url, c.rep.token, nil, nil), http.StatusNotFound, "")
}

// TestUploadedPhotoIsProcessed uploads a real photo (EXIF orientation 6, GPS, capture time) with
// creation-with-upload: the document gets its capture time, place and upright size, then an
// upright thumbnail without metadata, each a change that syncs to the rep; downloads redirect to
// presigned URLs for callers who can see the document, and to nobody else.
func TestUploadedPhotoIsProcessed(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	e.startJobs(t)
	c := e.newCase(t)
	photo, err := os.ReadFile("../media/testdata/photo_exif.jpg")
	if err != nil {
		t.Fatal(err)
	}
	doc := e.newDocument(t, c, map[string]any{"file_name": ""})
	r := mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Upload-Length": strconv.Itoa(len(photo)),
		"Upload-Metadata": metadata(doc, "filename", "IMG_0042.jpg")}, photo)
	expect(t, r, http.StatusCreated, "")
	if r.header.Get("Upload-Offset") != strconv.Itoa(len(photo)) {
		t.Fatalf("creation-with-upload: Upload-Offset %q", r.header.Get("Upload-Offset"))
	}
	uploaded := e.doc(t, doc)
	if uploaded.Status != "uploaded" {
		t.Fatalf("status %s", uploaded.Status)
	}

	// Before processing, no thumbnail to download.
	var d docRow
	deadline := time.Now().Add(30 * time.Second)
	for d = e.doc(t, doc); d.ThumbnailKey == nil; d = e.doc(t, doc) {
		if time.Now().After(deadline) {
			var errs []byte
			_ = e.db.Pool.QueryRow(context.Background(), `SELECT coalesce(jsonb_agg(errors)::text, '') FROM river_job`).Scan(&errs)
			t.Fatalf("no thumbnail after 30 s: %+v; job errors %s", d, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d.Width == nil || *d.Width != 400 || *d.Height != 800 {
		t.Errorf("size %v×%v, want 400×800 (upright)", d.Width, d.Height)
	}
	if want := time.Date(2026, 3, 14, 8, 26, 53, 0, time.UTC); d.CapturedAt == nil || !d.CapturedAt.Equal(want) {
		t.Errorf("captured at %v, want %v", d.CapturedAt, want)
	}
	if d.Lat == nil || *d.Lat < 38.7222 || *d.Lat > 38.7224 || *d.Lng > -9.1392 || *d.Lng < -9.1394 {
		t.Errorf("GPS %v, %v; want 38.7223, -9.1393", d.Lat, d.Lng)
	}
	// Three changes, in order: uploaded, then the EXIF data, then the thumbnail.
	var vStatus, vEXIF, vThumb int64
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT (field_versions->>'status')::bigint, (field_versions->>'captured_at')::bigint,
		(field_versions->>'thumbnail_key')::bigint FROM documents WHERE id = $1`, doc).Scan(&vStatus, &vEXIF, &vThumb); err != nil {
		t.Fatal(err)
	}
	if !(vStatus < vEXIF && vEXIF < vThumb) {
		t.Errorf("field versions status %d, captured_at %d, thumbnail_key %d: want three changes in that order", vStatus, vEXIF, vThumb)
	}
	var name string
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT file_name FROM documents WHERE id = $1`, doc).Scan(&name); err != nil || name != "IMG_0042.jpg" {
		t.Errorf("file name %q (%v), want the upload's", name, err)
	}

	// The rep's device sees it all through sync.
	pull := e.do(t, "GET", "/v1/sync/pull?limit=1000", c.rep.token, nil)
	expect(t, pull, http.StatusOK, "")
	var page syncPage
	if err := json.Unmarshal(pull.body, &page); err != nil {
		t.Fatal(err)
	}
	if data := wantUpsert(t, "the rep's pull", page.Changes, "document", doc); data["has_thumbnail"] != true {
		t.Errorf("the rep's pull does not show the thumbnail: %v", data)
	}
	if bytes.Contains(pull.body, []byte("thumb.jpg")) || bytes.Contains(pull.body, []byte(`"object_key"`)) {
		t.Errorf("the pull shows object keys")
	}

	thumb := e.download(t, c.rep.token, doc, "thumbnail")
	if bytes.Contains(thumb, []byte("Exif\x00\x00")) {
		t.Error("the thumbnail carries EXIF")
	}
	img, err := jpeg.Decode(bytes.NewReader(thumb))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 512 {
		t.Errorf("thumbnail %v, want 256×512", b)
	}
	if r, _, b, _ := img.At(128, 64).RGBA(); r < 2*b {
		t.Errorf("thumbnail not upright: top is %v, want red", img.At(128, 64))
	}
	if got := e.download(t, c.rep.token, doc, "content"); !bytes.Equal(got, photo) {
		t.Error("the downloaded file is not the uploaded one")
	}
	_ = e.download(t, c.mgr.token, doc, "content")

	// A manager of another branch, and an admin, cannot.
	elsewhere, err := e.accounts.CreateBranch(context.Background(), "Other "+uuid.NewString()[:6])
	if err != nil {
		t.Fatal(err)
	}
	stranger := e.actor(t, elsewhere.ID, "manager")
	expect(t, e.do(t, "GET", "/v1/documents/"+doc.String()+"/content", stranger.token, nil), http.StatusNotFound, "not_found")
	expect(t, e.do(t, "GET", "/v1/documents/"+doc.String()+"/thumbnail", stranger.token, nil), http.StatusNotFound, "not_found")
	expect(t, e.do(t, "GET", "/v1/documents/"+doc.String()+"/content", "", nil), http.StatusUnauthorized, "")
	expect(t, e.do(t, "GET", "/v1/documents/nope/content", c.rep.token, nil), http.StatusBadRequest, "invalid_value")
}

// download follows a download route's redirect and returns the bytes.
func (e *upEnv) download(t *testing.T, token string, doc uuid.UUID, what string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/documents/"+doc.String()+"/"+what, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: %d, want 302", what, res.StatusCode)
	}
	loc := res.Header.Get("Location")
	if !strings.Contains(loc, "X-Amz-Expires=300") || !strings.Contains(loc, "X-Amz-Signature=") {
		t.Fatalf("Location is not a 5-minute presigned URL: %s", loc)
	}
	got, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	data, _ := io.ReadAll(got.Body)
	if got.StatusCode != http.StatusOK {
		t.Fatalf("presigned GET: %d %s", got.StatusCode, data)
	}
	return data
}

func TestUploadedPNGGetsAThumbnail(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	e.startJobs(t)
	c := e.newCase(t)
	var file bytes.Buffer
	if err := png.Encode(&file, halvesImage(300, 200)); err != nil {
		t.Fatal(err)
	}
	doc := e.newDocument(t, c, nil)
	e.upload(t, c.rep.token, doc, file.Bytes())
	deadline := time.Now().Add(30 * time.Second)
	for e.doc(t, doc).ThumbnailKey == nil {
		if time.Now().After(deadline) {
			t.Fatal("no thumbnail after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := e.doc(t, doc)
	if d.ContentType != "image/png" || *d.Width != 300 || *d.Height != 200 {
		t.Errorf("document %+v", d)
	}
	if _, err := jpeg.Decode(bytes.NewReader(e.download(t, c.rep.token, doc, "thumbnail"))); err != nil {
		t.Errorf("thumbnail: %v", err)
	}
}

// TestRejectedDocumentTakesANewUpload: a processor rejects a document with a reason; the rep
// uploads a new file to the same document, which goes back to review with it; the same bytes sent
// twice are stored once.
func TestRejectedDocumentTakesANewUpload(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	proc := e.actor(t, e.branchID, "processor")
	doc := e.newDocument(t, c, nil)
	first := jpegFile(40<<10, 11)
	e.upload(t, c.rep.token, doc, first)
	before := e.doc(t, doc)

	// Same bytes again (the phone lost its upload URL): accepted, stored once, no change.
	e.upload(t, c.rep.token, doc, first)
	if d := e.doc(t, doc); *d.ObjectKey != *before.ObjectKey || d.Version != before.Version {
		t.Errorf("the same bytes changed the document: %+v", d)
	}
	if keys := e.objects(t); len(keys) != 1 {
		t.Errorf("the same bytes twice are stored as %v", keys)
	}
	// Other bytes for a document awaiting review are refused.
	url := e.create(t, e.srv.URL, c.rep.token, doc, 1000)
	expect(t, patch(t, url, c.rep.token, 0, jpegFile(1000, 12)), http.StatusConflict, "document_already_uploaded")

	// The rep starts the task, so the claim is in review and the processor sees it; they reject.
	e.command(t, c.rep.ident, sync.TypeTask, "update", c.task, map[string]any{"status": "accepted"})
	e.command(t, proc.ident, sync.TypeDocument, "update", doc, map[string]any{"status": "rejected", "review_note": "Blurred."})
	if d := e.doc(t, doc); d.Status != "rejected" {
		t.Fatalf("status %s", d.Status)
	}
	second := jpegFile(50<<10, 13)
	e.upload(t, c.rep.token, doc, second)
	d := e.doc(t, doc)
	if d.Status != "uploaded" || *d.SHA256 != sha256Hex(second) || *d.ObjectKey == *before.ObjectKey || d.ReviewNote != "" {
		t.Fatalf("after the new upload: %+v", d)
	}
	if keys := e.objects(t); len(keys) != 1 || keys[0] != *d.ObjectKey {
		t.Errorf("objects %v, want only the new file", keys)
	}
	if !bytes.Equal(e.object(t, *d.ObjectKey), second) {
		t.Error("stored bytes differ")
	}
	// Once approved, no new file.
	e.command(t, proc.ident, sync.TypeDocument, "update", doc, map[string]any{"status": "approved"})
	r := mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Upload-Length": "10", "Upload-Metadata": metadata(doc)}, nil)
	expect(t, r, http.StatusConflict, "document_approved")
}

// storeProxy stands between the server and MinIO, and can refuse or stall connections: the object
// store going down, or hanging.
type storeProxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32 // 0 forward, 1 drop connections, 2 stall them
	mu     gosync.Mutex
	conns  []net.Conn
}

func newStoreProxy(t *testing.T, target string) *storeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &storeProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.closeAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			switch p.mode.Load() {
			case 1:
				c.Close()
				continue
			case 2:
				continue // held open, never answered
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

// set changes the mode and cuts every open connection.
func (p *storeProxy) set(mode int32) {
	p.mode.Store(mode)
	p.closeAll()
}

func (p *storeProxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestUploadWhenTheStoreFails: with the object store down, or hanging, a PATCH fails with 503,
// Retry-After and the error shape, nothing half-written counts, and the device resumes once the
// store is back.
func TestUploadWhenTheStoreFails(t *testing.T) {
	t.Parallel()
	base := upSetup(t)
	proxy := newStoreProxy(t, base.s3.Endpoint)
	svc, _, srv := base.replica(t, func(o *apptest.Setup) { o.S3.Endpoint = proxy.ln.Addr().String(); o.StoreTimeout = 2 * time.Second })
	base.svc, base.srv = svc, srv
	e := base
	c := e.newCase(t)
	file := jpegFile(11<<20, 14)
	doc := e.newDocument(t, c, nil)
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	expect(t, patch(t, url, c.rep.token, 0, file[:5<<20+10]), http.StatusNoContent, "")

	for _, mode := range []int32{1, 2} {
		proxy.set(mode)
		start := time.Now()
		r := patch(t, url, c.rep.token, 5<<20+10, file[5<<20+10:])
		expect(t, r, http.StatusServiceUnavailable, "object_store_unavailable")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("mode %d: 503 without Retry-After", mode)
		}
		if time.Since(start) > 20*time.Second {
			t.Errorf("mode %d: the failure took %v", mode, time.Since(start))
		}
		if d := e.doc(t, doc); d.Status != "pending_upload" {
			t.Fatalf("mode %d: document %s with the store down", mode, d.Status)
		}
		proxy.set(0)
		got := offsetOf(t, url, c.rep.token)
		if got < 5<<20+10 || got >= len(file) {
			t.Fatalf("mode %d: offset %d after the failure", mode, got)
		}
	}
	// Creating an upload with the store down is refused the same way.
	proxy.set(1)
	r := mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Upload-Length": "10", "Upload-Metadata": metadata(doc)}, nil)
	expect(t, r, http.StatusServiceUnavailable, "object_store_unavailable")
	proxy.set(0)

	off := offsetOf(t, url, c.rep.token)
	expect(t, patch(t, url, c.rep.token, off, file[off:]), http.StatusNoContent, "")
	d := e.doc(t, doc)
	if d.Status != "uploaded" || !bytes.Equal(e.object(t, *d.ObjectKey), file) {
		t.Fatalf("after resuming: %+v", d)
	}
}

// TestUploadCompletionInterruptedIsFinishedLater: the last byte is stored but the document cannot
// be updated (the database refuses, as if the server died there); the upload is left received,
// the document pending, and the cleanup loop of any replica finishes it later: the multipart
// upload completed already is recognised, and the document becomes uploaded once.
func TestUploadCompletionInterruptedIsFinishedLater(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	file := jpegFile(6<<20, 15)
	doc := e.newDocument(t, c, nil)
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `
		CREATE FUNCTION test_crash() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'simulated crash'; END $$;
		CREATE TRIGGER test_crash BEFORE UPDATE ON documents FOR EACH ROW WHEN (NEW.status = 'uploaded') EXECUTE FUNCTION test_crash()`); err != nil {
		t.Fatal(err)
	}
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	r := patch(t, url, c.rep.token, 0, file)
	if r.status < 500 {
		t.Fatalf("status %d with the completion failing: %s", r.status, r.body)
	}
	if got := offsetOf(t, url, c.rep.token); got != len(file) {
		t.Fatalf("offset %d: every byte was stored", got)
	}
	if d := e.doc(t, doc); d.Status != "pending_upload" {
		t.Fatalf("status %s: nothing half-done may count", d.Status)
	}
	if _, err := e.db.Pool.Exec(ctx, `DROP TRIGGER test_crash ON documents`); err != nil {
		t.Fatal(err)
	}
	svc, _, _ := e.replica(t)
	if err := svc.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	d := e.doc(t, doc)
	if d.Status != "uploaded" || !bytes.Equal(e.object(t, *d.ObjectKey), file) {
		t.Fatalf("after the cleanup: %+v", d)
	}
	if n := e.multipartUploads(t); n != 0 {
		t.Errorf("%d multipart uploads left", n)
	}
}

func halvesImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{220, 20, 20, 255}
			if x >= w/2 {
				c = color.RGBA{20, 20, 220, 255}
			}
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// TestUploadWithMethodOverrideAndChunkedBody: tus-java-client sends POST with
// X-HTTP-Method-Override: PATCH and a chunked body; both work.
func TestUploadWithMethodOverrideAndChunkedBody(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	file := jpegFile(7<<20+3, 16)
	doc := e.newDocument(t, c, nil)
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	r, err := tusDo(t, "POST", url, c.rep.token, map[string]string{"X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0"},
		io.MultiReader(bytes.NewReader(file[:6<<20])), -1)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, http.StatusNoContent, "")
	if r.header.Get("Upload-Offset") != strconv.Itoa(6<<20) {
		t.Fatalf("offset %q", r.header.Get("Upload-Offset"))
	}
	r, err = tusDo(t, "PATCH", url, c.rep.token, map[string]string{"Upload-Offset": strconv.Itoa(6 << 20)},
		io.MultiReader(bytes.NewReader(file[6<<20:])), -1)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, r, http.StatusNoContent, "")
	if d := e.doc(t, doc); d.Status != "uploaded" || !bytes.Equal(e.object(t, *d.ObjectKey), file) {
		t.Fatalf("document %+v", d)
	}
}
