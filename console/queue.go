package console

import (
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/sync"
)

// queuePage is the review queue: the claims under review, and those collecting with documents
// waiting, oldest first, a page at a time (the engine's ReviewQueue, as GET /v1/review-queue).
type queuePage struct {
	View
	Rows []queueRow
	// Next is the cursor of the next page ("" on the last); First is set past the first page.
	Next  string
	First bool
}

type queueRow struct {
	Claim    claimView
	Customer customerView
	Waiting  int64
	Total    int64
	Age      string
}

// queuePageSize is how many claims a page of the queue shows.
const queuePageSize = 50

func (c *Console) queue(q *request) error {
	after := q.r.URL.Query().Get("after")
	page, err := c.engine.ReviewQueue(q.ctx(), q.who, queuePageSize, after)
	if err != nil {
		return err
	}
	data := queuePage{View: q.view("queue.title"), Next: page.Next, First: after != ""}
	now := c.now()
	for _, it := range page.Items {
		row := queueRow{Waiting: it.DocumentsAwaitingReview, Total: it.Documents}
		if err := decode(it.Claim, &row.Claim); err != nil {
			return err
		}
		if err := decode(it.Customer, &row.Customer); err != nil {
			return err
		}
		row.Age = q.p.Ago(now.Sub(row.Claim.CreatedAt))
		data.Rows = append(data.Rows, row)
	}
	c.render(q, http.StatusOK, "queue", data)
	return nil
}

// claimView is a claim as the pages read it (the engine's record, as the API sends it).
type claimView struct {
	sync.Claim
	PolicyNumber string    `json:"policy_number"`
	Description  string    `json:"description"`
	Hospitalised bool      `json:"hospitalised"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

type customerView struct {
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	Address string `json:"address"`
}
