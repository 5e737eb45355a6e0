package console

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/i18n"
	"github.com/google/uuid"
)

// managerRoutes registers the branch manager's pages, one file each: the task board (board.go),
// the claims list (claims.go), the conflict log (conflicts.go), alerts with the event stream
// (alerts.go), the figures (figures.go), the devices (devices.go) and why a record is not on a
// phone (whynot.go). Reads go through the engine's and account service's list functions, writes
// through the engine's commands, as the API's.
func (c *Console) managerRoutes() {
	m := c.mux
	m.HandleFunc("GET "+Prefix+"/board", c.page(c.board, manager))
	m.HandleFunc("POST "+Prefix+"/tasks", c.page(c.createTask, manager))
	m.HandleFunc("POST "+Prefix+"/tasks/{id}/assign", c.page(c.assignTask, manager))
	m.HandleFunc("POST "+Prefix+"/tasks/{id}/cancel", c.page(c.cancelTask, manager))
	m.HandleFunc("POST "+Prefix+"/tasks/{id}/reopen", c.page(c.reopenTask, manager))
	m.HandleFunc("GET "+Prefix+"/claims", c.page(c.claims, manager))
	m.HandleFunc("GET "+Prefix+"/conflicts", c.page(c.conflicts, manager))
	m.HandleFunc("GET "+Prefix+"/alerts", c.page(c.alerts, manager))
	m.HandleFunc("GET "+Prefix+"/alerts/totals", c.page(c.alertTotals, manager))
	m.HandleFunc("GET "+Prefix+"/events", c.page(c.events, manager))
	m.HandleFunc("GET "+Prefix+"/figures", c.page(c.figures, manager))
	m.HandleFunc("GET "+Prefix+"/devices", c.page(c.devices, manager))
	m.HandleFunc("GET "+Prefix+"/why", c.page(c.whyNot, manager))
}

// managerHome is the managers' first page (a path under Prefix): the task board.
const managerHome = "/board"

// managerFuncs are the template functions of the manager's pages.
var managerFuncs = template.FuncMap{
	// mul100 turns a ratio into a percentage.
	"mul100": func(f *float64) float64 { return *f * 100 },
	"add":    func(a, b int) int { return a + b },
	// chartOf hands the chart template its chart, the id of the heading that names it, and the
	// printer.
	"chartOf": func(c chart, label string, p *i18n.Printer) chartData { return chartData{C: c, Label: label, P: p} },
	// hours prints seconds as hours with one decimal.
	"hours": func(p *i18n.Printer, seconds *float64) string { return p.T("figures.hours", *seconds/3600) },
}

type chartData struct {
	C     chart
	Label string
	P     *i18n.Printer
}

// people are the users of the manager's branch, for pickers, with the reps apart.
type people struct {
	All  []account.BranchUser
	Reps []account.BranchUser
}

func (c *Console) branchPeople(q *request) (*people, error) {
	all, err := c.accounts.ListBranchUsers(q.ctx(), q.who)
	if err != nil {
		return nil, err
	}
	p := &people{All: all}
	for _, u := range all {
		if u.Role == "rep" && !u.Disabled {
			p.Reps = append(p.Reps, u)
		}
	}
	return p, nil
}

// name is the name of user id, or "".
func (p *people) name(id uuid.UUID) string {
	i := slices.IndexFunc(p.All, func(u account.BranchUser) bool { return u.ID == id })
	if i < 0 {
		return ""
	}
	return p.All[i].Name
}

// pageURL is path with query, the after cursor replaced by next: a list's next page keeps its
// filters.
func pageURL(path string, query url.Values, next string) string {
	v := url.Values{}
	for k, vs := range query {
		if k != "after" {
			v[k] = vs
		}
	}
	if next != "" {
		v.Set("after", next)
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// formValue reads a posted field, the body capped first.
func formValue(q *request, name string) string {
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, 64<<10)
	return q.r.PostFormValue(name)
}
