// Package tus is the tus 1.0.0 protocol (https://tus.io/protocols/resumable-upload): core,
// creation, creation-with-upload, checksum, expiration and termination, so that the official
// clients (tus-js-client, TUSKit, tus-android-client) work as they are. As in tusd, the handler
// speaks HTTP and the protocol's headers, and leaves the uploads' state to a store behind a small
// interface (Uploads): it knows nothing of databases or object storage.
//
// The handler returns refusals as *fieldsync.Error values, which the HTTP layer maps to statuses
// with every other error (460 Checksum Mismatch among them); the protocol's headers on an error
// answer (Tus-Resumable, Upload-Offset on a 409) are set before it returns.
package tus

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/internal/bodydeadline"
	"github.com/fieldsync/fieldsync/internal/forwarded"
	"github.com/google/uuid"
)

const (
	version      = "1.0.0"
	extensions   = "creation,creation-with-upload,checksum,expiration,termination"
	checksums    = "sha1,sha256"
	offsetStream = "application/offset+octet-stream"
)

// metadataOrder is the order Upload-Metadata is echoed in: known keys first, then the rest sorted.
var metadataOrder = []string{"document_id", "filename", "content_type", "sha256"}

// Options are the handler's settings. MaxSize, BodyIdleTimeout, UploadsPerUser and
// UploadsPerDevice are required.
type Options struct {
	// MaxSize is the largest upload accepted, announced as Tus-Max-Size.
	MaxSize int64
	// BodyIdleTimeout ends an upload request whose body sends nothing for this long (408
	// body_idle_timeout); what arrived is kept.
	BodyIdleTimeout time.Duration
	// UploadsPerUser and UploadsPerDevice cap the upload requests in progress for one user and one
	// device (429 too_many_uploads beyond).
	UploadsPerUser, UploadsPerDevice int
	// PublicURL, when set, is the base of upload URLs (the Location of a creation). Otherwise they
	// are built on the request's scheme and Host, with X-Forwarded-Proto and X-Forwarded-Host
	// believed only from TrustedProxies.
	PublicURL      *url.URL
	TrustedProxies []*net.IPNet
}

// Handler answers tus requests, keeping the uploads in an Uploads.
type Handler struct {
	uploads  Uploads
	opts     Options
	inflight *inflight
}

// NewHandler returns a handler keeping uploads in uploads.
func NewHandler(uploads Uploads, o Options) *Handler {
	return &Handler{uploads: uploads, opts: o, inflight: newInflight(o.UploadsPerUser, o.UploadsPerDevice)}
}

// InFlight returns the number of upload requests (PATCH, creation with data) in progress.
func (h *Handler) InFlight() int { return h.inflight.total() }

// Serve answers a tus request: for the uploads collection when uploadID is empty (OPTIONS, POST),
// else for one upload (OPTIONS, HEAD, PATCH, DELETE, and POST with X-HTTP-Method-Override for
// clients that cannot send PATCH). The caller must be authenticated (an Identity on the request's
// context) for everything but OPTIONS. It returns the error to answer, if any, with the
// protocol's headers set already.
func (h *Handler) Serve(w http.ResponseWriter, r *http.Request, uploadID string) error {
	hd := w.Header()
	hd.Set("Tus-Resumable", version)
	hd.Set("Cache-Control", "no-store")
	method := r.Method
	if o := r.Header.Get("X-HTTP-Method-Override"); o != "" && method == http.MethodPost && uploadID != "" {
		method = strings.ToUpper(o)
	}
	if method == http.MethodOptions {
		hd.Set("Tus-Version", version)
		hd.Set("Tus-Extension", extensions)
		hd.Set("Tus-Max-Size", strconv.FormatInt(h.opts.MaxSize, 10))
		hd.Set("Tus-Checksum-Algorithm", checksums)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if v := r.Header.Get("Tus-Resumable"); v != version {
		hd.Set("Tus-Version", version)
		return &fieldsync.Error{Kind: fieldsync.EPRECONDITION, Code: "tus_version_unsupported",
			Message: "Send Tus-Resumable: 1.0.0; it is the only tus version this server speaks."}
	}
	caller := fieldsync.IdentityFromContext(r.Context())
	if caller == nil {
		return fieldsync.Errorf(fieldsync.EUNAUTHORIZED, "token_invalid", "Send Authorization: Bearer <access token>.")
	}
	var err error
	if uploadID == "" {
		if method != http.MethodPost {
			err = errMethod
		} else {
			err = h.create(w, r, caller)
		}
	} else {
		id, perr := uuid.Parse(uploadID)
		switch {
		case perr != nil:
			err = ErrNotFound
		case method == http.MethodHead:
			err = h.head(w, r, caller, id)
		case method == http.MethodPatch:
			err = h.patch(w, r, caller, id)
		case method == http.MethodDelete:
			err = h.delete(w, r, caller, id)
		default:
			err = errMethod
		}
	}
	var fe *fieldsync.Error
	if err != nil && !errors.As(err, &fe) && (errors.Is(err, io.ErrUnexpectedEOF) || r.Context().Err() != nil) {
		// The client went away mid-body; what arrived is kept and nobody reads this answer.
		return errIncomplete
	}
	return err
}

var (
	errMethod = &fieldsync.Error{Kind: fieldsync.EMETHOD, Code: "method_not_allowed", Message: "This endpoint does not take that method."}
	// errIncomplete answers a body that ended early.
	errIncomplete = fieldsync.Errorf(fieldsync.EINVALID, "request_incomplete", "The request body ended early.")
)

func (h *Handler) create(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity) error {
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
	var ck *Checksum
	if withData {
		if err := requireOffsetStream(r); err != nil {
			return err
		}
		if ck, err = parseChecksum(r.Header.Get("Upload-Checksum")); err != nil {
			return err
		}
		// Counted before the upload is created: a creation turned away changes nothing.
		done, err := h.inflight.admit(caller)
		if err != nil {
			return err
		}
		defer done()
	}
	u, err := h.uploads.Create(r.Context(), caller, length, md)
	if err != nil {
		return err
	}
	w.Header().Set("Location", h.uploadURL(r, u.ID))
	w.Header().Set("Upload-Expires", expires(u))
	if withData {
		// creation-with-upload: the body is the first PATCH. A failure of it is answered as such;
		// the upload exists (Location says where) and can be resumed.
		body := h.body(w, r)
		wrote, err := h.uploads.Write(r.Context(), caller, u.ID, 0, body, r.ContentLength, ck)
		body.Done()
		if err != nil {
			return err
		}
		setOffsetHeaders(w, wrote)
	} else {
		w.Header().Set("Upload-Offset", "0")
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (h *Handler) head(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity, id uuid.UUID) error {
	u, err := h.uploads.Find(r.Context(), caller, id)
	if err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Upload-Length", strconv.FormatInt(u.Length, 10))
	keys := slices.Clone(metadataOrder)
	for k := range u.Metadata {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys[len(metadataOrder):])
	if md := formatMetadata(keys, u.Metadata); md != "" {
		hd.Set("Upload-Metadata", md)
	}
	setOffsetHeaders(w, u)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (h *Handler) patch(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity, id uuid.UUID) error {
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
	done, err := h.inflight.admit(caller)
	if err != nil {
		return err
	}
	defer done()
	body := h.body(w, r)
	u, err := h.uploads.Write(r.Context(), caller, id, offset, body, r.ContentLength, ck)
	body.Done()
	if u != nil {
		setOffsetHeaders(w, u)
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) delete(w http.ResponseWriter, r *http.Request, caller *fieldsync.Identity, id uuid.UUID) error {
	if err := h.uploads.Terminate(r.Context(), caller, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// body is the request's body under the idle deadline: a stalled phone's request ends (408
// body_idle_timeout) and gives back what it holds, with what arrived kept.
func (h *Handler) body(w http.ResponseWriter, r *http.Request) *bodydeadline.Body {
	idle := h.opts.BodyIdleTimeout
	return bodydeadline.New(w, r.Body, idle, 0, func() error { return errBodyIdle(idle) })
}

func setOffsetHeaders(w http.ResponseWriter, u *Upload) {
	w.Header().Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
	if u.Completed {
		w.Header().Del("Upload-Expires")
	} else {
		w.Header().Set("Upload-Expires", expires(u))
	}
}

// expires is the Upload-Expires header of an unfinished upload.
func expires(u *Upload) string {
	return u.ExpiresAt.UTC().Format(http.TimeFormat)
}

func requireOffsetStream(r *http.Request) error {
	ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	if !strings.EqualFold(strings.TrimSpace(ct), offsetStream) {
		return &fieldsync.Error{Kind: fieldsync.EMEDIATYPE, Code: "unsupported_media_type",
			Message: "Upload bytes with Content-Type: application/offset+octet-stream."}
	}
	return nil
}

// uploadURL is the absolute URL of upload id, under the path the creation was posted to. Clients
// resolve a relative Location too, but not every version of every client did. It is built on
// PublicURL when set. Otherwise it is the request's own scheme and Host, forwarded ones believed
// only from a trusted proxy, since anyone else could point a phone's upload at a server of their
// choosing.
func (h *Handler) uploadURL(r *http.Request, id uuid.UUID) string {
	path := strings.TrimSuffix(r.URL.Path, "/") + "/" + id.String()
	if h.opts.PublicURL != nil {
		return h.opts.PublicURL.String() + path
	}
	return forwarded.Scheme(r, h.opts.TrustedProxies) + "://" + forwarded.Host(r, h.opts.TrustedProxies) + path
}
