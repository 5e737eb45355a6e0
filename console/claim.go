package console

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// claimPage is a claim with its customer, tasks, the field's notes and documents, read in one
// snapshot by the engine's FindClaim (as GET /v1/claims/{id}).
type claimPage struct {
	View
	Claim     claimView
	Customer  customerView
	Tasks     []taskView
	Notes     []noteView
	Documents []documentView
	Truncated bool
	// Processor: the decision forms are shown (the engine refuses anyone else all the same).
	Processor bool
	// CanApprove, CanReject and CanPay follow the claim's state machine, to show only the
	// actions that apply.
	CanApprove bool
	CanReject  bool
	CanPay     bool
}

type taskView struct {
	ID             uuid.UUID `json:"id"`
	Title          string    `json:"title"`
	Kind           string    `json:"kind"`
	Status         string    `json:"status"`
	DueAt          time.Time `json:"due_at"`
	CompletionNote string    `json:"completion_note"`
}

type noteView struct {
	TaskID    uuid.UUID `json:"task_id"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

type documentView struct {
	ID              uuid.UUID `json:"id"`
	Kind            string    `json:"kind"`
	FileName        string    `json:"file_name"`
	ContentType     string    `json:"content_type"`
	SizeBytes       *int64    `json:"size_bytes"`
	Status          string    `json:"status"`
	ReviewNote      string    `json:"review_note"`
	CapturedAt      time.Time `json:"captured_at"`
	GPSLat          *float64  `json:"gps_lat"`
	GPSLng          *float64  `json:"gps_lng"`
	UploadedAt      time.Time `json:"uploaded_at"`
	HasThumbnail    bool      `json:"has_thumbnail"`
	ProcessingError string    `json:"processing_error"`
	Version         int64     `json:"version"`
}

// Opens says how the browser shows the file: inline (JPEG, PNG), in its viewer (PDF), or as a
// download (HEIC and anything else a browser cannot show).
func (d documentView) Opens() string {
	switch d.ContentType {
	case "image/jpeg", "image/png":
		return "inline"
	case "application/pdf":
		return "viewer"
	}
	return "download"
}

// Uploaded reports whether the document's file is there to open.
func (d documentView) Uploaded() bool { return !d.UploadedAt.IsZero() }

// Reviewable reports whether the document waits for a decision.
func (d documentView) Reviewable() bool { return d.Status == string(sync.DocumentUploaded) }

// GPS prints the capture position, or "".
func (d documentView) GPS() string {
	if d.GPSLat == nil || d.GPSLng == nil {
		return ""
	}
	return strconv.FormatFloat(*d.GPSLat, 'f', 5, 64) + ", " + strconv.FormatFloat(*d.GPSLng, 'f', 5, 64)
}

// MapURL links the capture position to OpenStreetMap.
func (d documentView) MapURL() string {
	if d.GPSLat == nil || d.GPSLng == nil {
		return ""
	}
	lat, lng := strconv.FormatFloat(*d.GPSLat, 'f', 5, 64), strconv.FormatFloat(*d.GPSLng, 'f', 5, 64)
	return "https://www.openstreetmap.org/?mlat=" + lat + "&mlon=" + lng + "#map=17/" + lat + "/" + lng
}

func (c *Console) claim(q *request) error { return c.showClaim(q, nil) }

// showClaim renders the claim of the path's id with notice (a command's outcome, or nil).
func (c *Console) showClaim(q *request, notice *Notice) error {
	id, err := pathID(q)
	if err != nil {
		return err
	}
	detail, err := c.engine.FindClaim(q.ctx(), q.who, id)
	if err != nil {
		return err
	}
	data := claimPage{View: q.view("claim.title"), Truncated: len(detail.Truncated) > 0, Processor: q.who.Role == processor}
	data.Notice = notice
	if err := decode(detail.Claim, &data.Claim); err != nil {
		return err
	}
	if err := decode(detail.Customer, &data.Customer); err != nil {
		return err
	}
	data.Title = q.p.T("claim.title_of", data.Claim.Number)
	for _, raw := range detail.Tasks {
		var t taskView
		if err := decode(raw, &t); err != nil {
			return err
		}
		data.Tasks = append(data.Tasks, t)
	}
	for _, raw := range detail.Notes {
		var n noteView
		if err := decode(raw, &n); err != nil {
			return err
		}
		data.Notes = append(data.Notes, n)
	}
	for _, raw := range detail.Documents {
		var d documentView
		if err := decode(raw, &d); err != nil {
			return err
		}
		data.Documents = append(data.Documents, d)
	}
	status := data.Claim.Status
	data.CanApprove = sync.ClaimMachine.Allowed(status, sync.ClaimApproved, processor)
	data.CanReject = sync.ClaimMachine.Allowed(status, sync.ClaimRejected, processor)
	data.CanPay = sync.ClaimMachine.Allowed(status, sync.ClaimPaid, processor)
	c.render(q, http.StatusOK, "claim", data)
	return nil
}

// documentFile sends the browser to a short-lived link of the document's file (or thumbnail),
// made by the media service for a caller whose scope holds the document.
func (c *Console) documentFile(thumbnail bool) func(*request) error {
	return func(q *request) error {
		id, err := pathID(q)
		if err != nil {
			return err
		}
		if c.media == nil {
			return fieldsync.Errorf(fieldsync.EUNAVAILABLE, "no_object_store", "Documents are not stored on this server.")
		}
		url, err := c.media.DownloadURL(q.ctx(), q.who, id, thumbnail)
		if err != nil {
			return err
		}
		http.Redirect(q.w, q.r, url, http.StatusFound)
		return nil
	}
}

// reviewDocument approves or rejects a document (a rejection needs a reason: the rep is told).
// The form names its claim, whose page is shown again.
func (c *Console) reviewDocument(q *request) error {
	doc, err := pathID(q)
	if err != nil {
		return err
	}
	d, base := decision(q)
	return c.command(q, func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error) {
		return c.engine.ReviewDocument(ctx, who, doc, d, base)
	}, "outcome.document."+d.Decision, c.claimOfForm(q))
}

// decideClaim approves or rejects the claim.
func (c *Console) decideClaim(q *request) error {
	claim, err := pathID(q)
	if err != nil {
		return err
	}
	d, base := decision(q)
	return c.command(q, func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error) {
		return c.engine.DecideClaim(ctx, who, claim, d, base)
	}, "outcome.claim."+d.Decision, func(n *Notice) error { return c.showClaim(q, n) })
}

// recordPayment records the payment of an approved claim; the amount is typed in the branch's
// currency (major units) and passed to the engine in minor units.
func (c *Console) recordPayment(q *request) error {
	claim, err := pathID(q)
	if err != nil {
		return err
	}
	_, base := decision(q)
	amount, ok := q.p.ParseMoney(q.r.PostFormValue("amount"))
	if !ok {
		return c.showClaim(q, &Notice{Error: true, Text: q.p.T("payment.invalid")})
	}
	return c.command(q, func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error) {
		return c.engine.RecordPayment(ctx, who, claim, json.RawMessage(strconv.FormatInt(amount, 10)), base)
	}, "outcome.payment", func(n *Notice) error { return c.showClaim(q, n) })
}

// decision reads a decision form: decision, note, and the version of the record the person saw
// (so that a decision taken meanwhile by someone else is a conflict, not silently overwritten).
func decision(q *request) (sync.Decision, *int64) {
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, 64<<10)
	d := sync.Decision{Decision: q.r.PostFormValue("decision")}
	if note := strings.TrimSpace(q.r.PostFormValue("note")); note != "" {
		d.Note, _ = json.Marshal(note)
	}
	var base *int64
	if v, err := strconv.ParseInt(q.r.PostFormValue("version"), 10, 64); err == nil {
		base = &v
	}
	return d, base
}

// claimOfForm shows the claim the form names (claim_id) again with the notice.
func (c *Console) claimOfForm(q *request) func(*Notice) error {
	return func(n *Notice) error {
		id, err := uuid.Parse(q.r.PostFormValue("claim_id"))
		if err != nil {
			return fieldsync.InvalidField("claim_id", "claim_id must be a UUID.")
		}
		q.r.SetPathValue("id", id.String())
		return c.showClaim(q, n)
	}
}

// pathID is the path's {id}; a malformed one is a page not found.
func pathID(q *request) (uuid.UUID, error) {
	id, err := uuid.Parse(q.r.PathValue("id"))
	if err != nil || id == uuid.Nil {
		return uuid.Nil, errNotFound
	}
	return id, nil
}
