package media

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/fieldsync/fieldsync"
	"github.com/google/uuid"
)

// The tus 1.0.0 server (https://tus.io/protocols/resumable-upload): core, creation,
// creation-with-upload, checksum, expiration and termination, so that the official clients
// (tus-js-client, TUSKit, tus-android-client) work as they are. The HTTP layer authenticates the
// caller and routes here; the protocol, its headers and its statuses (460 among them) are this
// file's, as in tusd, so errors are written here too, in the API's error shape.

const (
	tusVersion     = "1.0.0"
	tusExtensions  = "creation,creation-with-upload,checksum,expiration,termination"
	tusChecksums   = "sha1,sha256"
	offsetStream   = "application/offset+octet-stream"
	statusChecksum = 460 // the checksum extension's "Checksum Mismatch"
)

// metadataOrder is the order Upload-Metadata is echoed in: known keys first, then the rest sorted.
var metadataOrder = []string{"document_id", "filename", "content_type", "sha256"}

// ServeTus answers a tus request: for the uploads collection when uploadID is empty (OPTIONS,
// POST), else for one upload (OPTIONS, HEAD, PATCH, DELETE, and POST with X-HTTP-Method-Override
// for clients that cannot send PATCH). The caller must be authenticated (an Identity on the
// request's context) for everything but OPTIONS.
func (s *Service) ServeTus(w http.ResponseWriter, r *http.Request, uploadID string) {
	h := w.Header()
	h.Set("Tus-Resumable", tusVersion)
	h.Set("Cache-Control", "no-store")
	method := r.Method
	if o := r.Header.Get("X-HTTP-Method-Override"); o != "" && method == http.MethodPost && uploadID != "" {
		method = strings.ToUpper(o)
	}
	if method == http.MethodOptions {
		h.Set("Tus-Version", tusVersion)
		h.Set("Tus-Extension", tusExtensions)
		h.Set("Tus-Max-Size", strconv.FormatInt(s.opts.MaxUploadBytes, 10))
		h.Set("Tus-Checksum-Algorithm", tusChecksums)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if v := r.Header.Get("Tus-Resumable"); v != tusVersion {
		h.Set("Tus-Version", tusVersion)
		s.writeError(w, r, &fieldsync.Error{Kind: "precondition_failed", Code: "tus_version_unsupported",
			Message: "Send Tus-Resumable: 1.0.0; it is the only tus version this server speaks."})
		return
	}
	caller := fieldsync.IdentityFromContext(r.Context())
	if caller == nil {
		s.writeError(w, r, fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "Send Authorization: Bearer <access token>."))
		return
	}
	var err error
	if uploadID == "" {
		if method != http.MethodPost {
			err = &fieldsync.Error{Kind: "method_not_allowed", Code: "method_not_allowed", Message: "This endpoint does not take that method."}
		} else {
			err = s.tusCreate(w, r, caller)
		}
	} else {
		id, perr := uuid.Parse(uploadID)
		switch {
		case perr != nil:
			err = errUploadNotFound
		case method == http.MethodHead:
			err = s.tusHead(w, r, caller, id)
		case method == http.MethodPatch:
			err = s.tusPatch(w, r, caller, id)
		case method == http.MethodDelete:
			err = s.tusDelete(w, r, caller, id)
		default:
			err = &fieldsync.Error{Kind: "method_not_allowed", Code: "method_not_allowed", Message: "This endpoint does not take that method."}
		}
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Service) tusCreate(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity) error {
	if r.Header.Get("Upload-Defer-Length") != "" || r.Header.Get("Upload-Concat") != "" {
		return fieldsync.Errorf(fieldsync.EINVALID, "extension_unsupported", "This server does not support deferred lengths or concatenation.")
	}
	length, err := parseOffset("Upload-Length", r.Header.Get("Upload-Length"))
	if err != nil {
		return err
	}
	md, err := parseMetadata(r.Header.Get("Upload-Metadata"))
	if err != nil {
		return err
	}
	withData := r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody
	var ck *checksum
	if withData {
		if err := requireOffsetStream(r); err != nil {
			return err
		}
		if ck, err = parseChecksum(r.Header.Get("Upload-Checksum")); err != nil {
			return err
		}
	}
	if withData {
		// Counted before the upload is created: a creation turned away changes nothing.
		done, err := s.inflight.admit(caller)
		if err != nil {
			return err
		}
		defer done()
	}
	u, err := s.createUpload(r.Context(), caller, length, md)
	if err != nil {
		return err
	}
	w.Header().Set("Location", s.uploadURL(r, u.ID))
	w.Header().Set("Upload-Expires", uploadExpires(u))
	if withData {
		// creation-with-upload: the body is the first PATCH. A failure of it is answered as such;
		// the upload exists (Location says where) and can be resumed.
		body := newIdleBody(w, r.Body, s.opts.BodyIdleTimeout)
		wrote, err := s.write(r.Context(), caller, u.ID, 0, body, r.ContentLength, ck)
		body.done()
		if err != nil {
			return err
		}
		u = wrote
		setOffsetHeaders(w, u)
	} else {
		w.Header().Set("Upload-Offset", "0")
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Service) tusHead(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity, id uuid.UUID) error {
	u, err := s.findUpload(r.Context(), caller, id)
	if err != nil {
		return err
	}
	if u.expired(s.NowFunc()) {
		return errUploadExpired
	}
	h := w.Header()
	h.Set("Upload-Length", strconv.FormatInt(u.Length, 10))
	keys := slices.Clone(metadataOrder)
	for k := range u.Metadata {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys[len(metadataOrder):])
	if md := formatMetadata(keys, u.Metadata); md != "" {
		h.Set("Upload-Metadata", md)
	}
	setOffsetHeaders(w, u)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Service) tusPatch(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity, id uuid.UUID) error {
	if err := requireOffsetStream(r); err != nil {
		return err
	}
	offset, err := parseOffset("Upload-Offset", r.Header.Get("Upload-Offset"))
	if err != nil {
		return err
	}
	ck, err := parseChecksum(r.Header.Get("Upload-Checksum"))
	if err != nil {
		return err
	}
	done, err := s.inflight.admit(caller)
	if err != nil {
		return err
	}
	defer done()
	body := newIdleBody(w, r.Body, s.opts.BodyIdleTimeout)
	u, err := s.write(r.Context(), caller, id, offset, body, r.ContentLength, ck)
	body.done()
	if u != nil {
		setOffsetHeaders(w, u)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Service) tusDelete(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity, id uuid.UUID) error {
	if err := s.terminate(r.Context(), caller, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func setOffsetHeaders(w http.ResponseWriter, u *upload) {
	w.Header().Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
	if u.State == stateCompleted {
		w.Header().Del("Upload-Expires")
	} else {
		w.Header().Set("Upload-Expires", uploadExpires(u))
	}
}

func requireOffsetStream(r *http.Request) error {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), offsetStream) {
		return &fieldsync.Error{Kind: "unsupported_media_type", Code: "unsupported_media_type",
			Message: "Upload bytes with Content-Type: application/offset+octet-stream."}
	}
	return nil
}

// uploadURL is the absolute URL of upload id, under the path the creation was posted to. Clients
// resolve a relative Location too, but not every version of every client did. It is built on
// PublicURL when set. Otherwise it is the request's own scheme and Host; X-Forwarded-Proto and
// X-Forwarded-Host are believed only from a trusted proxy, since anyone else could point a
// phone's upload at a server of their choosing.
func (s *Service) uploadURL(r *http.Request, id uuid.UUID) string {
	path := strings.TrimSuffix(r.URL.Path, "/") + "/" + id.String()
	if s.publicURL != nil {
		return s.publicURL.String() + path
	}
	scheme, host := "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if s.fromTrustedProxy(r) {
		if p := forwardedProto(r.Header.Get("X-Forwarded-Proto")); p != "" {
			scheme = p
		}
		if h := forwardedHost(r.Header.Get("X-Forwarded-Host")); h != "" {
			host = h
		}
	}
	return scheme + "://" + host + path
}

// fromTrustedProxy reports whether the request's peer is in TrustedProxies.
func (s *Service) fromTrustedProxy(r *http.Request) bool {
	if len(s.opts.TrustedProxies) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range s.opts.TrustedProxies {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedProto reads X-Forwarded-Proto as the first proxy set it: "http" or "https", or "" for
// anything else.
func forwardedProto(v string) string {
	first, _, _ := strings.Cut(v, ",")
	switch p := strings.ToLower(strings.TrimSpace(first)); p {
	case "http", "https":
		return p
	}
	return ""
}

// forwardedHost reads X-Forwarded-Host as the first proxy set it: a host and optional port, or ""
// if it is not one.
func forwardedHost(v string) string {
	first, _, _ := strings.Cut(v, ",")
	h := strings.TrimSpace(first)
	if h == "" || len(h) > 255 {
		return ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]", c) >= 0) {
			return ""
		}
	}
	// And it must read back as a URL's host, with a name.
	if u, err := url.Parse("http://" + h + "/"); err != nil || u.Host != h || u.Hostname() == "" {
		return ""
	}
	return h
}

// statusByKind maps the domain's error kinds, and the protocol's own, to statuses.
var statusByKind = map[string]int{
	fieldsync.EINVALID:       http.StatusBadRequest,
	fieldsync.EUNAUTHORIZED:  http.StatusUnauthorized,
	fieldsync.EFORBIDDEN:     http.StatusForbidden,
	fieldsync.ENOTFOUND:      http.StatusNotFound,
	fieldsync.ECONFLICT:      http.StatusConflict,
	fieldsync.EGONE:          http.StatusGone,
	fieldsync.ETOOLARGE:      http.StatusRequestEntityTooLarge,
	fieldsync.ERATELIMIT:     http.StatusTooManyRequests,
	fieldsync.EUNAVAILABLE:   http.StatusServiceUnavailable,
	"method_not_allowed":     http.StatusMethodNotAllowed,
	"precondition_failed":    http.StatusPreconditionFailed,
	"unsupported_media_type": http.StatusUnsupportedMediaType,
	"checksum_mismatch":      statusChecksum,
	kindRequestTimeout:       http.StatusRequestTimeout,
}

// writeError answers err in the API's error shape ({"error": {"code", "message", "details"}}).
// Only server faults are logged; they are shown to the client as an opaque internal error.
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *fieldsync.Error
	var ue *unavailableError
	switch {
	case errors.As(err, &ue):
		fe = ue.domain()
	case errors.As(err, &fe):
	case errors.Is(err, io.ErrUnexpectedEOF) || r.Context().Err() != nil:
		// The client went away mid-body; what arrived is kept and nobody reads this answer.
		fe = fieldsync.Errorf(fieldsync.EINVALID, "request_incomplete", "The request body ended early.")
	default:
		fe = fieldsync.Errorf(fieldsync.EINTERNAL, "internal", "Something went wrong on the server; it has been logged.")
	}
	status, ok := statusByKind[fe.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	// server_busy is load, not a fault: logging each one would add to it.
	if status >= 500 && fe != errServerBusy {
		s.log.ErrorContext(r.Context(), "upload request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.String("request_id", w.Header().Get("X-Request-Id")), slog.Any("err", err))
	}
	if fe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(fe.RetryAfter.Seconds()))))
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	type detail struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details,omitempty"`
	}
	_ = json.NewEncoder(w).Encode(struct {
		Error detail `json:"error"`
	}{detail{fe.Code, fe.Message, fe.Details}})
}
