package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// The upload server's defences, over HTTP against the real server, PostgreSQL and MinIO: caps on
// uploads in progress, a bounded wait for a part buffer, an idle deadline on bodies, metadata that
// must be text, upload and download URLs that do not come from the client, one file name
// cleaning, and no orphan uploads.

// answerWait bounds how long a test waits for an answer that must come: a server that never
// answers fails the test instead of hanging it.
const answerWait = 60 * time.Second

// openPatch sends the head of a PATCH of url declaring length bytes from offset, then the bytes
// of sent, on a connection of its own, and sends nothing more: a phone whose link stalls. The
// connection is closed when the test ends, or by the caller.
func openPatch(t *testing.T, url, token string, offset, length int, sent []byte) net.Conn {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("PATCH %s HTTP/1.1\r\nHost: %s\r\nTus-Resumable: 1.0.0\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/offset+octet-stream\r\nUpload-Offset: %d\r\nContent-Length: %d\r\n\r\n", u.Path, u.Host, token, offset, length)
	if _, err := conn.Write(append([]byte(head), sent...)); err != nil {
		t.Fatal(err)
	}
	return conn
}

// answerOn reads the answer the server sends on conn, failing if none comes within answerWait.
func answerOn(t *testing.T, conn net.Conn) response {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(answerWait)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// waitFor polls cond until it holds, failing the test if it does not within answerWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(answerWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// patchWithin sends a PATCH as patch does, failing if it is not answered within answerWait.
func patchWithin(t *testing.T, url, token string, offset int, chunk []byte) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), answerWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "PATCH", url, strings.NewReader(string(chunk)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	req.Header.Set("Upload-Offset", strconv.Itoa(offset))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PATCH not answered: %v", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: data}
}

// retryAfter fails unless r says when to retry.
func wantRetryAfter(t *testing.T, r response) {
	t.Helper()
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After %q: %s", r.header.Get("Retry-After"), r.body)
	}
}

// TestUploadStalledPatchesCannotStarveOthers has one rep open as many PATCHes as the server has
// part buffers, each stalling after 1 KiB: only as many as the caps allow are taken, the rest are
// turned away at once (429), and another rep's upload completes.
func TestUploadStalledPatchesCannotStarveOthers(t *testing.T) {
	t.Parallel()
	const buffers = 4
	e := upSetup(t, func(o *apptest.Setup) {
		o.UploadBuffers, o.UploadsPerUser, o.UploadsPerDevice = buffers, 2, 2
	})
	hog := e.newCase(t)
	var refused int
	for i := range buffers {
		url := e.create(t, e.srv.URL, hog.rep.token, e.newDocument(t, hog, nil), 1<<20)
		conn := openPatch(t, url, hog.rep.token, 0, 1<<20, jpegFile(1<<10, uint64(i)))
		if i < 2 {
			// Taken: it holds a buffer while it stalls.
			waitFor(t, "the stalled PATCH holds a part buffer", func() bool { return e.svc.Stats().BufferedParts == int64(i+1) })
			continue
		}
		r := answerOn(t, conn)
		expect(t, r, http.StatusTooManyRequests, "too_many_uploads")
		wantRetryAfter(t, r)
		refused++
	}
	if refused != buffers-2 {
		t.Fatalf("%d PATCHes refused, want %d", refused, buffers-2)
	}

	other := e.newCase(t)
	doc := e.newDocument(t, other, nil)
	file := jpegFile(200<<10, 9)
	url := e.create(t, e.srv.URL, other.rep.token, doc, len(file))
	expect(t, patchWithin(t, url, other.rep.token, 0, file), http.StatusNoContent, "")
	if d := e.doc(t, doc); d.Status != "uploaded" || *d.SHA256 != sha256Hex(file) {
		t.Fatalf("the other rep's document: %+v", d)
	}
}

// signInTwice creates a rep of the test branch signed in on two devices, and returns them with
// the two devices' tokens.
func (e *upEnv) signInTwice(t *testing.T) (*upActor, [2]string) {
	t.Helper()
	login := "rep-" + uuid.NewString()[:8]
	id, err := e.accounts.CreateUser(context.Background(), account.NewUser{BranchID: e.branchID, Role: "rep", RepKind: "hospital",
		Login: login, Name: "User " + login, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	var tokens [2]string
	for i := range tokens {
		tk, err := e.accounts.Login(context.Background(), account.LoginRequest{Login: login, Password: testPassword,
			Device: account.Device{ID: uuid.New(), Platform: "android", Name: "Pixel"}}, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		tokens[i] = tk.AccessToken
	}
	return &upActor{id: id, token: tokens[0], ident: &fieldsync.Identity{UserID: id, Role: "rep", BranchID: e.branchID}}, tokens
}

// TestUploadCapsPerUserAndDevice: a device has at most UploadsPerDevice upload requests in
// progress, a user at most UploadsPerUser over all their devices; one beyond is answered 429
// too_many_uploads, saying which cap, and nothing of it is kept. Once one ends, the next is taken.
func TestUploadCapsPerUserAndDevice(t *testing.T) {
	t.Parallel()
	e := upSetup(t, func(o *apptest.Setup) { o.UploadsPerUser, o.UploadsPerDevice = 3, 2 })
	who, tokens := e.signInTwice(t)
	rep := e.newCaseFor(t, who)

	uploads := make([]string, 5)
	for i := range uploads {
		uploads[i] = e.create(t, e.srv.URL, tokens[0], e.newDocument(t, rep, nil), 1<<20)
	}
	stall := func(i int, token string) net.Conn {
		return openPatch(t, uploads[i], token, 0, 1<<20, jpegFile(1<<10, uint64(i)))
	}
	held := func(n int) {
		waitFor(t, fmt.Sprintf("%d upload requests in progress", n), func() bool { return e.svc.Stats().UploadRequests == n })
	}
	first := stall(0, tokens[0])
	stall(1, tokens[0])
	held(2)
	r := answerOn(t, stall(2, tokens[0]))
	expect(t, r, http.StatusTooManyRequests, "too_many_uploads")
	wantRetryAfter(t, r)
	var body struct {
		Error struct {
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	r.json(t, &body)
	if body.Error.Details["per"] != "device" {
		t.Fatalf("refused for %v, want the device's cap", body.Error.Details)
	}
	// The second device has room, until the user's cap.
	stall(3, tokens[1])
	held(3)
	r = answerOn(t, stall(4, tokens[1]))
	expect(t, r, http.StatusTooManyRequests, "too_many_uploads")
	r.json(t, &body)
	if body.Error.Details["per"] != "user" {
		t.Fatalf("refused for %v, want the user's cap", body.Error.Details)
	}
	if n := offsetOf(t, uploads[4], tokens[1]); n != 0 {
		t.Fatalf("a refused PATCH stored %d bytes", n)
	}
	// One ends (its link drops): the next is taken.
	first.Close()
	held(2)
	file := jpegFile(1<<20, 4)
	expect(t, patchWithin(t, uploads[4], tokens[1], 0, file), http.StatusNoContent, "")
}

// TestUploadWaitsForABufferOnlySoLong: when every part buffer is held, a PATCH waits at most
// BufferWait and is answered 503 server_busy with Retry-After, its upload unchanged; it goes
// through once a buffer is free.
func TestUploadWaitsForABufferOnlySoLong(t *testing.T) {
	t.Parallel()
	e := upSetup(t, func(o *apptest.Setup) { o.UploadBuffers, o.UploadBufferWait = 1, 200*time.Millisecond })
	hog := e.newCase(t)
	url := e.create(t, e.srv.URL, hog.rep.token, e.newDocument(t, hog, nil), 1<<20)
	conn := openPatch(t, url, hog.rep.token, 0, 1<<20, jpegFile(1<<10, 1))
	waitFor(t, "the stalled PATCH holds the part buffer", func() bool { return e.svc.Stats().BufferedParts == 1 })

	other := e.newCase(t)
	doc := e.newDocument(t, other, nil)
	file := jpegFile(100<<10, 2)
	mine := e.create(t, e.srv.URL, other.rep.token, doc, len(file))
	r := patchWithin(t, mine, other.rep.token, 0, file)
	expect(t, r, http.StatusServiceUnavailable, "server_busy")
	wantRetryAfter(t, r)
	if n := offsetOf(t, mine, other.rep.token); n != 0 {
		t.Fatalf("a refused PATCH stored %d bytes", n)
	}
	conn.Close()
	waitFor(t, "the buffer is given back", func() bool { return e.svc.Stats().BufferedParts == 0 })
	expect(t, patchWithin(t, mine, other.rep.token, 0, file), http.StatusNoContent, "")
}

// TestUploadStalledBodyLosesItsBuffer: a PATCH whose body stops sending is ended after
// BodyIdleTimeout (408 body_idle_timeout) and gives its part buffer back; every byte that arrived
// is kept, and the upload resumes from HEAD's offset to a whole file.
func TestUploadStalledBodyLosesItsBuffer(t *testing.T) {
	t.Parallel()
	e := upSetup(t, func(o *apptest.Setup) { o.BodyIdleTimeout = 300 * time.Millisecond })
	c := e.newCase(t)
	file := jpegFile(6<<20+4321, 3)
	doc := e.newDocument(t, c, map[string]any{"sha256": sha256Hex(file)})
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	sent := 5<<20 + 777 // a whole part and a trailing piece
	r := answerOn(t, openPatch(t, url, c.rep.token, 0, len(file), file[:sent]))
	expect(t, r, http.StatusRequestTimeout, "body_idle_timeout")
	if r.header.Get("Upload-Offset") != strconv.Itoa(sent) {
		t.Fatalf("Upload-Offset %q after %d bytes", r.header.Get("Upload-Offset"), sent)
	}
	if n := e.svc.Stats().BufferedParts; n != 0 {
		t.Fatalf("%d part buffers still held", n)
	}
	offset := offsetOf(t, url, c.rep.token)
	if offset != sent {
		t.Fatalf("HEAD offset %d, want %d", offset, sent)
	}
	expect(t, patchWithin(t, url, c.rep.token, offset, file[offset:]), http.StatusNoContent, "")
	if d := e.doc(t, doc); d.Status != "uploaded" || *d.SHA256 != sha256Hex(file) {
		t.Fatalf("document after resuming: %+v", d)
	}
}

// TestUploadTrickledBodyIsCut: a body that sends a few bytes at intervals longer than
// BodyIdleTimeout is ended, however long it would go on; what arrived is kept.
func TestUploadTrickledBodyIsCut(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	e := upSetup(t, func(o *apptest.Setup) { o.BodyIdleTimeout = idle })
	c := e.newCase(t)
	file := jpegFile(64<<10, 5)
	doc := e.newDocument(t, c, nil)
	url := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	const piece = 4000 // more than the sniffed head, so the type is checked as the bytes come
	conn := openPatch(t, url, c.rep.token, 0, len(file), file[:piece])
	stop := make(chan struct{})
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		for off := piece; off < len(file); off += piece {
			select {
			case <-stop:
				return
			case <-time.After(3 * idle):
			}
			if _, err := conn.Write(file[off:min(off+piece, len(file))]); err != nil {
				return
			}
		}
	}()
	r := answerOn(t, conn)
	close(stop)
	<-trickled
	expect(t, r, http.StatusRequestTimeout, "body_idle_timeout")
	offset := offsetOf(t, url, c.rep.token)
	if offset < piece || offset >= len(file) || offset%piece != 0 || r.header.Get("Upload-Offset") != strconv.Itoa(offset) {
		t.Fatalf("offset %d (answered %q) after a trickle of %d-byte pieces of %d", offset, r.header.Get("Upload-Offset"), piece, len(file))
	}
	expect(t, patchWithin(t, url, c.rep.token, offset, file[offset:]), http.StatusNoContent, "")
	if d := e.doc(t, doc); *d.SHA256 != sha256Hex(file) {
		t.Fatalf("document after resuming: %+v", d)
	}
}

// TestUploadMetadataMustBeText: a NUL or invalid UTF-8 in an Upload-Metadata value is a 400 that
// names the key, and no upload is created.
func TestUploadMetadataMustBeText(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	doc := e.newDocument(t, c, map[string]any{"file_name": ""})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct{ field, md string }{
		{"filename", metadata(doc, "filename", "photo\x00.jpg")},
		{"filename", metadata(doc, "filename", "photo\xff.jpg")},
		{"content_type", metadata(doc, "content_type", "image/jpeg\x00")},
		{"content_type", metadata(doc, "content_type", "\xc3\x28")},
		{"document_id", "document_id " + b64(doc.String()+"\x00")},
		{"document_id", "document_id " + b64("\xed\xa0\x80")},
	} {
		r := mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Upload-Length": "1000", "Upload-Metadata": tc.md}, nil)
		expect(t, r, http.StatusBadRequest, "invalid_header")
		var body struct {
			Error struct {
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		r.json(t, &body)
		if body.Error.Details["field"] != tc.field || body.Error.Details["header"] != "Upload-Metadata" {
			t.Errorf("%q: details %v, want field %s", tc.md, body.Error.Details, tc.field)
		}
	}
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM uploads WHERE document_id = $1`, doc).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d uploads created (%v)", n, err)
	}
}

// createAs posts a creation with extra headers and, if host is not empty, that Host, and returns
// the Location answered.
func createAs(t *testing.T, base, token string, doc uuid.UUID, host string, headers map[string]string) string {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/uploads", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Upload-Length", "100")
	req.Header.Set("Upload-Metadata", metadata(doc))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if host != "" {
		req.Host = host
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("creation: %d", res.StatusCode)
	}
	return res.Header.Get("Location")
}

// TestUploadLocationIsNotTheClients: with PublicURL set, the upload URL is built on it whatever
// Host and X-Forwarded-* say; without, X-Forwarded-Proto and -Host count only from a trusted
// proxy.
func TestUploadLocationIsNotTheClients(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	forged := map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"}

	_, _, public := e.replica(t, func(o *apptest.Setup) { o.PublicURL = "https://sync.example.com/" })
	loc := createAs(t, public.URL, c.rep.token, e.newDocument(t, c, nil), "evil.example", forged)
	if !strings.HasPrefix(loc, "https://sync.example.com/v1/uploads/") {
		t.Fatalf("Location %q is not on the public URL", loc)
	}

	// No public URL, no trusted proxy: the peer's X-Forwarded-* are not believed.
	host := strings.TrimPrefix(e.srv.URL, "http://")
	loc = createAs(t, e.srv.URL, c.rep.token, e.newDocument(t, c, nil), "", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"})
	if !strings.HasPrefix(loc, "http://"+host+"/v1/uploads/") {
		t.Fatalf("Location %q took forwarded headers from an untrusted peer", loc)
	}

	// Behind a trusted proxy (here, loopback), they are.
	_, _, proxied := e.replica(t, func(o *apptest.Setup) {
		_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
		o.TrustedProxies = []*net.IPNet{loopback}
	})
	loc = createAs(t, proxied.URL, c.rep.token, e.newDocument(t, c, nil), "", map[string]string{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "sync.example.com"})
	if !strings.HasPrefix(loc, "https://sync.example.com/v1/uploads/") {
		t.Fatalf("Location %q did not take a trusted proxy's forwarded headers", loc)
	}
}

// downloadLocation returns the Location of a download route's redirect, on base.
func downloadLocation(t *testing.T, base, token string, doc uuid.UUID) *neturl.URL {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/documents/"+doc.String()+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound {
		t.Fatalf("download: %d, want 302", res.StatusCode)
	}
	u, err := neturl.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestDownloadLinkUsesThePublicStoreEndpoint: with the store's public endpoint set, download
// links are on it, signed without contacting it (its name does not even resolve), and the
// signature holds when the request reaches the store with that Host, as through its proxy.
// Without, they are on the store's own address.
func TestDownloadLinkUsesThePublicStoreEndpoint(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	doc := e.newDocument(t, c, nil)
	file := jpegFile(50<<10, 6)
	e.upload(t, c.rep.token, doc, file)

	if u := downloadLocation(t, e.srv.URL, c.rep.token, doc); u.Host != e.s3.Endpoint {
		t.Fatalf("default download link on %s, want the store's %s", u.Host, e.s3.Endpoint)
	}

	const public = "files.fieldsync.invalid:9443"
	_, _, srv := e.replica(t, func(o *apptest.Setup) { o.S3.PublicEndpoint = "https://" + public })
	u := downloadLocation(t, srv.URL, c.rep.token, doc)
	if u.Scheme != "https" || u.Host != public || strings.Contains(u.String(), e.s3.Endpoint) {
		t.Fatalf("download link %s is not on the public endpoint", u.Redacted())
	}
	// As the public endpoint's proxy would: to the store, Host kept.
	u.Scheme, u.Host = "http", e.s3.Endpoint
	req, _ := http.NewRequest("GET", u.String(), nil)
	req.Host = public
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || sha256Hex(data) != sha256Hex(file) {
		t.Fatalf("the public link, through to the store: %d %.200s", res.StatusCode, data)
	}
}

// TestDocumentFileNameIsCleanedAlike: a file name with a path and CR/LF is cleaned the same way
// whether a push gives it or an upload's metadata does.
func TestDocumentFileNameIsCleanedAlike(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	const name, clean = "..\\evil\r\nname.jpg", "evilname.jpg"
	rep := &syncUser{id: c.rep.id, role: "rep", branch: e.branchID, token: c.rep.token}

	pushed := uuid.New()
	res := e.pushOne(t, rep, "applied", createOp("document", pushed, syncFields{"claim_id": c.claim, "task_id": c.task, "kind": "invoice",
		"file_name": name, "content_type": "image/jpeg"}))
	if res.Entity["file_name"] != clean {
		t.Fatalf("pushed file_name became %q, want %q", res.Entity["file_name"], clean)
	}

	uploaded := e.newDocument(t, c, map[string]any{"file_name": ""})
	file := jpegFile(20<<10, 8)
	url := mustTus(t, "POST", e.srv.URL+"/v1/uploads", c.rep.token, map[string]string{"Upload-Length": strconv.Itoa(len(file)),
		"Upload-Metadata": metadata(uploaded, "filename", name)}, nil).header.Get("Location")
	expect(t, patch(t, url, c.rep.token, 0, file), http.StatusNoContent, "")

	for _, id := range []uuid.UUID{pushed, uploaded} {
		var stored string
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT file_name FROM documents WHERE id = $1`, id).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored != clean {
			t.Errorf("document %s stored file_name %q, want %q", id, stored, clean)
		}
	}
}

// TestCompletedUploadDropsTheDocumentsOtherUploads: an upload left behind by an interrupted
// creation (the client never learnt its URL, and created another) is aborted, with its S3
// multipart upload and its stored bytes, when the document's file arrives through the other.
func TestCompletedUploadDropsTheDocumentsOtherUploads(t *testing.T) {
	t.Parallel()
	e := upSetup(t)
	c := e.newCase(t)
	file := jpegFile(300<<10, 10)
	doc := e.newDocument(t, c, nil)
	orphan := e.create(t, e.srv.URL, c.rep.token, doc, len(file))
	expect(t, patch(t, orphan, c.rep.token, 0, file[:10000]), http.StatusNoContent, "")

	e.upload(t, c.rep.token, doc, file)
	expect(t, mustTus(t, "HEAD", orphan, c.rep.token, nil, nil), http.StatusNotFound, "")
	if n := e.multipartUploads(t); n != 0 {
		t.Fatalf("%d S3 multipart uploads left", n)
	}
	orphanID := orphan[strings.LastIndex(orphan, "/")+1:]
	for _, key := range e.objects(t) {
		if strings.Contains(key, orphanID) {
			t.Fatalf("the dropped upload left %s", key)
		}
	}
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM uploads WHERE document_id = $1 AND state <> 'completed'`, doc).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d unfinished uploads left (%v)", n, err)
	}
}
