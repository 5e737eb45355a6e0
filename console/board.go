package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// boardPage is the branch's tasks by status and assignee: the engine's ListTasks (as GET
// /v1/tasks) filtered by status, assignee and a search of titles and claim numbers, a page at a
// time, laid out in one column per status. Each task carries the manager's commands that its
// state allows: assign or reassign, cancel, reopen (the engine's AssignTask, CancelTask and
// ReopenTask, the one write path).
type boardPage struct {
	View
	People   *people
	Statuses []string
	Kinds    []string
	// The filter as asked.
	Status   string
	Assignee string
	Search   string
	Columns  []boardColumn
	Next     string
	FirstURL string
	Count    int
}

type boardColumn struct {
	Status string
	Tasks  []boardTask
}

type boardTask struct {
	ID          uuid.UUID  `json:"id"`
	ClaimID     uuid.UUID  `json:"claim_id"`
	AssigneeID  *uuid.UUID `json:"assignee_id"`
	Kind        string     `json:"kind"`
	Title       string     `json:"title"`
	Status      string     `json:"status"`
	DueAt       *time.Time `json:"due_at"`
	Version     int64      `json:"version"`
	ClaimNumber string     `json:"-"`
	Assignee    string     `json:"-"`
}

// Unfinished reports whether the task may be reassigned or cancelled; Finished whether it may be
// reopened (the task state machine's ends).
func (t boardTask) Unfinished() bool { return !sync.TaskStatus(t.Status).Finished() }
func (t boardTask) Finished() bool   { return sync.TaskStatus(t.Status).Finished() }

// AssignedTo reports whether id holds the task.
func (t boardTask) AssignedTo(id uuid.UUID) bool { return t.AssigneeID != nil && *t.AssigneeID == id }

// boardPageSize is how many tasks a page of the board shows: each card carries its own forms and
// a picker of the branch's reps, so a page of the API's largest size (200) weighs 400 kB.
const boardPageSize = 100

func (c *Console) board(q *request) error { return c.showBoard(q, nil) }

// showBoard renders the board of the query's filter with notice.
func (c *Console) showBoard(q *request, notice *Notice) error {
	ppl, err := c.branchPeople(q)
	if err != nil {
		return err
	}
	query := q.r.URL.Query()
	if q.r.Method == http.MethodPost {
		// A command shows the board it was sent from, filter and all.
		query = boardQueryOf(q.r.PostFormValue("back"))
	}
	f := sync.TaskFilter{Search: query.Get("q"), Limit: boardPageSize, After: query.Get("after")}
	data := boardPage{View: q.view("board.title"), People: ppl, Statuses: sync.TaskMachine.Strings(), Kinds: taskKinds(),
		Status: query.Get("status"), Assignee: query.Get("assignee"), Search: f.Search}
	data.Notice = notice
	if data.Status != "" {
		f.Statuses = []string{data.Status}
	}
	if data.Assignee != "" {
		if f.AssigneeID, err = uuid.Parse(data.Assignee); err != nil {
			return fieldsync.InvalidField("assignee", "assignee must be a user id.")
		}
	}
	page, err := c.engine.ListTasks(q.ctx(), q.who, f)
	if err != nil {
		return err
	}
	byStatus := map[string][]boardTask{}
	for _, it := range page.Items {
		var t boardTask
		if err := decode(it.Task, &t); err != nil {
			return err
		}
		t.ClaimNumber = it.ClaimNumber
		if it.AssigneeName != nil {
			t.Assignee = *it.AssigneeName
		}
		byStatus[t.Status] = append(byStatus[t.Status], t)
	}
	for _, s := range data.Statuses {
		if data.Status == "" || data.Status == s {
			data.Columns = append(data.Columns, boardColumn{Status: s, Tasks: byStatus[s]})
		}
	}
	data.Count = len(page.Items)
	if page.HasMore {
		data.Next = pageURL(Prefix+"/board", query, page.Next)
	}
	if query.Get("after") != "" {
		data.FirstURL = pageURL(Prefix+"/board", query, "")
	}
	c.render(q, http.StatusOK, "board", data)
	return nil
}

func taskKinds() []string {
	var out []string
	for _, k := range sync.TaskKinds {
		out = append(out, string(k))
	}
	return out
}

// boardQueryOf reads the board's filter a command form carries back ("back": the board's query).
func boardQueryOf(back string) map[string][]string {
	v, err := url.ParseQuery(back)
	if err != nil {
		return nil
	}
	return v
}

// taskBase reads the version of the task the manager saw: a change made meanwhile (the rep
// completed it) is then a conflict the page tells, not silently overwritten.
func taskBase(q *request) *int64 {
	if v, err := strconv.ParseInt(formValue(q, "version"), 10, 64); err == nil {
		return &v
	}
	return nil
}

// assigneeOf reads an assignee picked in a form as the JSON the engine checks ("" is null).
func assigneeOf(q *request) json.RawMessage {
	v := strings.TrimSpace(formValue(q, "assignee_id"))
	if v == "" {
		return json.RawMessage("null")
	}
	raw, _ := json.Marshal(v)
	return raw
}

// assignTask assigns or reassigns a task to a rep of the branch.
func (c *Console) assignTask(q *request) error {
	task, err := pathID(q)
	if err != nil {
		return err
	}
	assignee, base := assigneeOf(q), taskBase(q)
	return c.command(q, func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error) {
		return c.engine.AssignTask(ctx, who, task, assignee, base)
	}, "outcome.task.assigned", func(n *Notice) error { return c.showBoard(q, n) })
}

// cancelTask cancels an unfinished task.
func (c *Console) cancelTask(q *request) error {
	task, err := pathID(q)
	if err != nil {
		return err
	}
	base := taskBase(q)
	return c.command(q, func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error) {
		return c.engine.CancelTask(ctx, who, task, base)
	}, "outcome.task.cancelled", func(n *Notice) error { return c.showBoard(q, n) })
}

// reopenTask reopens a finished task, for its former assignee or the one picked, with the reason
// recorded on it.
func (c *Console) reopenTask(q *request) error {
	task, err := pathID(q)
	if err != nil {
		return err
	}
	base, reason := taskBase(q), strings.TrimSpace(formValue(q, "reason"))
	var assignee json.RawMessage
	if formValue(q, "assignee_id") != "" {
		assignee = assigneeOf(q)
	}
	return c.command(q, func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error) {
		return c.engine.ReopenTask(ctx, who, task, assignee, reason, base)
	}, "outcome.task.reopened", func(n *Notice) error { return c.showBoard(q, n) })
}

// createTask creates a task of a claim (named by its number) through the engine's write path: a
// create mutation, as a manager's phone would push it.
func (c *Console) createTask(q *request) error {
	number := strings.TrimSpace(formValue(q, "claim"))
	claims, err := c.engine.ListClaims(q.ctx(), q.who, sync.ClaimFilter{Search: number, Limit: 2})
	if err != nil {
		return err
	}
	var claimID uuid.UUID
	for _, it := range claims.Items {
		var cl struct {
			ID     uuid.UUID `json:"id"`
			Number string    `json:"number"`
		}
		if err := decode(it.Claim, &cl); err != nil {
			return err
		}
		if strings.EqualFold(cl.Number, number) {
			claimID = cl.ID
		}
	}
	if number == "" || claimID == uuid.Nil {
		return c.showBoard(q, &Notice{Error: true, Text: q.p.T("board.no_such_claim", number)})
	}
	fields := map[string]any{"claim_id": claimID, "kind": formValue(q, "kind"), "title": strings.TrimSpace(formValue(q, "title"))}
	if a := formValue(q, "assignee_id"); a != "" {
		fields["assignee_id"] = a
	}
	if due := formValue(q, "due"); due != "" {
		at, err := time.ParseInLocation("2006-01-02T15:04", due, q.p.Location())
		if err != nil {
			return c.showBoard(q, &Notice{Error: true, Text: q.p.T("code.invalid_value")})
		}
		fields["due_at"] = at.UTC()
	}
	m := sync.Mutation{Type: sync.TypeTask, Op: "create", EntityID: uuid.Must(uuid.NewV7()), Fields: map[string]json.RawMessage{}}
	for k, v := range fields {
		m.Fields[k], _ = json.Marshal(v)
	}
	return c.command(q, func(ctx context.Context, who *fieldsync.Identity) (sync.Result, error) {
		return c.engine.Command(ctx, who, m)
	}, "outcome.task.created", func(n *Notice) error { return c.showBoard(q, n) })
}
