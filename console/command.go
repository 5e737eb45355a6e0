package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
)

// command runs one engine command (run: an engine method, the one write path) for the signed-in
// person, and shows its outcome with show, which renders the page again (whole, or its main
// element for htmx) with the notice: "done", or a refusal or lost race as a sentence. An error
// that is not the person's to read (the database is down) is the error page.
func (c *Console) command(q *request, run func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error),
	done string, show func(*Notice) error) error {
	res, err := run(q.ctx(), q.who)
	notice, err := c.outcome(q, res, err, done)
	if err != nil {
		return err
	}
	return show(notice)
}

// outcome is a command's result as a notice. A conflict the server kept its own value in (a
// decision already taken, a step the state machine does not allow) is told as what happened:
// "another processor approved this 3 s ago".
func (c *Console) outcome(q *request, res sync.Result, err error, done string) (*Notice, error) {
	var fe *fieldsync.Error
	switch {
	case err == nil:
	case errors.As(err, &fe) && fe.Kind != fieldsync.EINTERNAL && fe.Kind != fieldsync.EUNAVAILABLE && fe.Kind != fieldsync.EUNAUTHORIZED:
		return &Notice{Error: true, Text: c.message(q, fe)}, nil
	default:
		return nil, err
	}
	for _, cf := range res.Conflicts {
		if cf.Field == "status" && cf.Kept == "theirs" {
			return &Notice{Error: true, Text: c.lostRace(q, res, cf)}, nil
		}
	}
	if len(res.Conflicts) > 0 {
		return &Notice{Error: true, Text: q.p.T("outcome.partly")}, nil
	}
	return &Notice{Text: q.p.T(done)}, nil
}

// lostRace says who decided the record first and how long ago, from the record as it is now
// (the result's entity): its decider (reviewer_id, processor_id) and time (reviewed_at,
// updated_at).
func (c *Console) lostRace(q *request, res sync.Result, cf sync.Conflict) string {
	var now struct {
		Status      string    `json:"status"`
		ReviewerID  string    `json:"reviewer_id"`
		ProcessorID string    `json:"processor_id"`
		ReviewedAt  *jsonTime `json:"reviewed_at"`
		UpdatedAt   *jsonTime `json:"updated_at"`
	}
	_ = json.Unmarshal(res.Entity, &now)
	status := fmt.Sprint(cf.Theirs)
	if now.Status != "" {
		status = now.Status
	}
	by, at := now.ReviewerID, now.ReviewedAt
	if by == "" {
		by = now.ProcessorID
	}
	if at == nil {
		at = now.UpdatedAt
	}
	who := q.p.T("race.another")
	if by == q.who.UserID.String() {
		who = q.p.T("race.you")
	}
	verb := q.p.T("race.status." + status)
	if at == nil {
		return q.p.T("race.lost", who, verb, "")
	}
	return q.p.T("race.lost", who, verb, q.p.Ago(c.now().Sub(at.Time)))
}
