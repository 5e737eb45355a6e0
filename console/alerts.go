package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
)

// alertsPage is the manager's notifications, newest first (their inbox, as their devices hold
// it), kept live by the event stream (events, below): a new one appears at the top without a
// reload, and a payout alert refreshes the month's totals beside them.
type alertsPage struct {
	View
	Alerts []alertView
	Totals monthTotals
	// Live is false when the server has no event stream (notifications off).
	Live bool
}

type alertView struct {
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	Read      bool      `json:"read"`
}

// monthTotals are the branch's payouts of the current month in its time zone (the engine's
// Figures, as GET /v1/branch/figures).
type monthTotals struct {
	View
	Month   string
	Figures *sync.BranchFigures
}

// alertsShown is how many notifications the page lists.
const alertsShown = 50

func (c *Console) alerts(q *request) error {
	page, err := c.engine.ListNotifications(q.ctx(), q.who, alertsShown, "")
	if err != nil {
		return err
	}
	data := alertsPage{View: q.view("alerts.title"), Live: c.notify != nil}
	for _, raw := range page.Items {
		var a alertView
		if err := decode(raw, &a); err != nil {
			return err
		}
		data.Alerts = append(data.Alerts, a)
	}
	if data.Totals, err = c.monthTotals(q); err != nil {
		return err
	}
	c.render(q, http.StatusOK, "alerts", data)
	return nil
}

// alertTotals answers the month's totals alone, for the page to refresh after a payout alert.
func (c *Console) alertTotals(q *request) error {
	t, err := c.monthTotals(q)
	if err != nil {
		return err
	}
	c.renderFragment(q, "alerts", "totals", t)
	return nil
}

func (c *Console) monthTotals(q *request) (monthTotals, error) {
	now := c.now().In(q.p.Location())
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, now.Location())
	f, err := c.engine.Figures(q.ctx(), q.who, sync.Period{From: from, To: from.AddDate(0, 1, 0)})
	if err != nil {
		return monthTotals{}, err
	}
	return monthTotals{View: q.view("alerts.title"), Month: from.Format(q.p.T("notify.month_layout")), Figures: f}, nil
}

// renderFragment answers with one named template of page alone (no layout), for htmx.
func (c *Console) renderFragment(q *request, page, name string, data any) {
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		c.log.ErrorContext(q.r.Context(), "console: render", "page", page, "err", err)
		http.Error(q.w, "", http.StatusInternalServerError)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = q.w.Write(buf.Bytes())
}

// events streams the manager's notifications to the page as Server-Sent Events, through the
// notify service's Stream (the same stream as GET /v1/events): "notification" events carry the
// record as the inbox syncs it, and the page's script (manager.js) shows them. At each heartbeat
// the console session is checked again; once it has ended (signed out, idle), the stream ends and
// the browser's reconnection is sent to sign in.
func (c *Console) events(q *request) error {
	if c.notify == nil {
		return errNotFound
	}
	w, r := q.w, q.r
	rc := http.NewResponseController(w)
	cookie, _ := r.Cookie(sessionCookie)
	started := false
	var buf bytes.Buffer
	send := func(ev notify.Event) error {
		buf.Reset()
		_ = rc.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if !started {
			h := w.Header()
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			h.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			started = true
			buf.WriteString("retry: 2000\n\n")
		}
		switch ev.Type {
		case notify.EventHeartbeat:
			if _, err := c.accounts.FindWebSession(r.Context(), cookie.Value, c.cfg.IdleTimeout); err != nil {
				return err
			}
			buf.WriteString(": heartbeat\n\n")
		default:
			if ev.ID != "" {
				buf.WriteString("id: " + ev.ID + "\n")
			}
			data, _ := json.Marshal(json.RawMessage(ev.Data)) // compact: one data line
			buf.WriteString("event: " + ev.Type + "\ndata: ")
			buf.Write(data)
			buf.WriteString("\n\n")
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		return rc.Flush()
	}
	err := c.notify.Stream(r.Context(), q.who, r.Header.Get("Last-Event-ID"), send)
	if started {
		return nil // the stream is written; its end is the browser's to reconnect from
	}
	return err
}
