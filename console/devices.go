package console

import (
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/account"
)

// devicesPage is every phone of the branch with what the server knows of its sync (the account
// service's ListDevices, as GET /v1/branch/devices): last pull and push, cursor lag, queued
// uploads, app version, push token. A phone silent for longer than staleAfter is flagged in
// words, first in the list: "Hugo's phone has not synced for 2 days".
type devicesPage struct {
	View
	Rows     []deviceRow
	Stale    int
	Next     string
	FirstURL string
}

type deviceRow struct {
	account.DeviceState
	// LastSync is the later of the last pull and push; Silent how long ago it was, in words.
	LastSync time.Time
	Silent   string
	Stale    bool
}

// staleAfter is how long a phone may go without a sync before the page flags it.
const staleAfter = 24 * time.Hour

// devicesPageSize is how many devices a page shows.
const devicesPageSize = 200

func (c *Console) devices(q *request) error {
	query := q.r.URL.Query()
	page, err := c.accounts.ListDevices(q.ctx(), q.who, account.DeviceFilter{Limit: devicesPageSize, After: query.Get("after")})
	if err != nil {
		return err
	}
	now := c.now()
	data := devicesPage{View: q.view("devices.title")}
	var stale, fresh []deviceRow
	for _, d := range page.Items {
		// The last sync is the later of the last pull and push; a phone that made neither yet
		// (it signed in only) counts from when it was last seen.
		row := deviceRow{DeviceState: d}
		for _, at := range []*time.Time{d.LastPullAt, d.LastPushAt} {
			if at != nil && at.After(row.LastSync) {
				row.LastSync = *at
			}
		}
		if row.LastSync.IsZero() {
			row.LastSync = d.LastSeenAt
		}
		row.Silent = span(q, now.Sub(row.LastSync))
		row.Stale = d.RevokedAt == nil && d.WipedAt == nil && now.Sub(row.LastSync) > staleAfter
		if row.Stale {
			stale = append(stale, row)
		} else {
			fresh = append(fresh, row)
		}
	}
	data.Stale = len(stale)
	data.Rows = append(stale, fresh...)
	if page.HasMore {
		data.Next = pageURL(Prefix+"/devices", query, page.Next)
	}
	if query.Get("after") != "" {
		data.FirstURL = Prefix + "/devices"
	}
	c.render(q, http.StatusOK, "devices", data)
	return nil
}

// span prints a length of time in whole minutes, hours or days: "2 days".
func span(q *request, d time.Duration) string {
	switch {
	case d < time.Hour:
		return q.p.T("dur.minutes", int(max(d, 0)/time.Minute))
	case d < 48*time.Hour:
		return q.p.T("dur.hours", int(d/time.Hour))
	}
	return q.p.T("dur.days", int(d/(24*time.Hour)))
}
