package console

import (
	"net/http"

	"github.com/fieldsync/fieldsync/sync"
)

// conflictsPage is the branch's conflict log, newest first: both values, the rule that decided,
// what was kept, who wrote the side that met the conflict, from which device and when (the
// engine's ListConflicts, as GET /v1/conflicts).
type conflictsPage struct {
	View
	Rows     []sync.ConflictRecord
	Next     string
	FirstURL string
}

func (c *Console) conflicts(q *request) error {
	query := q.r.URL.Query()
	page, err := c.engine.ListConflicts(q.ctx(), q.who, sync.DefaultListLimit, query.Get("after"))
	if err != nil {
		return err
	}
	data := conflictsPage{View: q.view("conflicts.title"), Rows: page.Items}
	if page.HasMore {
		data.Next = pageURL(Prefix+"/conflicts", query, page.Next)
	}
	if query.Get("after") != "" {
		data.FirstURL = Prefix + "/conflicts"
	}
	c.render(q, http.StatusOK, "conflicts", data)
	return nil
}
