package console

import (
	"net/http"

	"github.com/fieldsync/fieldsync/sync"
)

// claimsPage is the branch's claims, newest first, filtered by status and a search of numbers,
// policies and customers' names: the engine's ListClaims (as GET /v1/claims), keyset-paged.
type claimsPage struct {
	View
	Statuses []string
	Status   string
	Search   string
	Rows     []queueRow
	Next     string
	FirstURL string
}

// claimsPageSize is how many claims a page of the list shows.
const claimsPageSize = 50

func (c *Console) claims(q *request) error {
	query := q.r.URL.Query()
	f := sync.ClaimFilter{Search: query.Get("q"), Limit: claimsPageSize, After: query.Get("after")}
	data := claimsPage{View: q.view("claims.title"), Statuses: sync.ClaimMachine.Strings(), Status: query.Get("status"), Search: f.Search}
	if data.Status != "" {
		f.Statuses = []string{data.Status}
	}
	page, err := c.engine.ListClaims(q.ctx(), q.who, f)
	if err != nil {
		return err
	}
	now := c.now()
	for _, it := range page.Items {
		var row queueRow
		if err := decode(it.Claim, &row.Claim); err != nil {
			return err
		}
		if err := decode(it.Customer, &row.Customer); err != nil {
			return err
		}
		row.Age = q.p.Ago(now.Sub(row.Claim.CreatedAt))
		data.Rows = append(data.Rows, row)
	}
	if page.HasMore {
		data.Next = pageURL(Prefix+"/claims", query, page.Next)
	}
	if query.Get("after") != "" {
		data.FirstURL = pageURL(Prefix+"/claims", query, "")
	}
	c.render(q, http.StatusOK, "claims", data)
	return nil
}
