package console

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// whyPage answers "why does rep X not see record Y": the person, a record type and its id (or a
// claim's number), and the engine's answer (ExplainScope: the rule of the one scope table that
// keeps it out or lets it in, and the tasks or claims that would bring it).
type whyPage struct {
	View
	People *people
	Types  []string
	User   string
	Type   string
	Record string
	Answer *sync.ScopeAnswer
	// RuleText is the answer's rule in words.
	RuleText string
	// Roots are the answer's roots as the page shows them.
	Roots []whyRoot
}

type whyRoot struct {
	sync.ScopeRoot
	Label    string
	Status   string
	Assignee string
}

// windowRules are the rules whose text says how long the scope window is.
var windowRules = map[string]bool{sync.RuleReadPastWindow: true, sync.RuleTaskFinishedPastWindow: true,
	sync.RuleTheirTasksFinishedPastWindow: true, sync.RuleClaimNotQueued: true}

// whyTypes are the record types a manager asks about, the most asked first.
var whyTypes = []string{sync.TypeTask, sync.TypeClaim, sync.TypeDocument, sync.TypeCustomer, sync.TypeTaskNote, sync.TypeNotification}

func (c *Console) whyNot(q *request) error {
	ppl, err := c.branchPeople(q)
	if err != nil {
		return err
	}
	query := q.r.URL.Query()
	data := whyPage{View: q.view("why.title"), People: ppl, Types: whyTypes,
		User: query.Get("user"), Type: query.Get("type"), Record: strings.TrimSpace(query.Get("record"))}
	if data.User == "" || data.Record == "" {
		c.render(q, http.StatusOK, "why", data)
		return nil
	}
	user, err := uuid.Parse(data.User)
	if err != nil {
		return errNotFound
	}
	record, err := uuid.Parse(data.Record)
	if err != nil && data.Type == sync.TypeClaim {
		record, err = c.claimByNumber(q, data.Record)
	}
	if err != nil || record == uuid.Nil {
		data.Notice = &Notice{Error: true, Text: q.p.T("why.no_record", data.Record)}
		c.render(q, http.StatusOK, "why", data)
		return nil
	}
	answer, err := c.engine.ExplainScope(q.ctx(), q.who, user, data.Type, record)
	if err != nil {
		return err
	}
	data.Answer = answer
	data.RuleText = q.p.T("why.rule."+answer.Rule, answer.UserName)
	if windowRules[answer.Rule] {
		data.RuleText = q.p.T("why.rule."+answer.Rule, answer.UserName, int(answer.Window/(24*time.Hour)))
	}
	for _, r := range answer.Roots {
		var rec struct {
			Title      string     `json:"title"`
			Number     string     `json:"number"`
			Status     string     `json:"status"`
			AssigneeID *uuid.UUID `json:"assignee_id"`
		}
		_ = json.Unmarshal(r.Record, &rec)
		row := whyRoot{ScopeRoot: r, Label: rec.Title + rec.Number, Status: rec.Status}
		if rec.AssigneeID != nil {
			row.Assignee = ppl.name(*rec.AssigneeID)
		}
		data.Roots = append(data.Roots, row)
	}
	c.render(q, http.StatusOK, "why", data)
	return nil
}

// claimByNumber finds the claim of the branch numbered number; uuid.Nil when there is none.
func (c *Console) claimByNumber(q *request, number string) (uuid.UUID, error) {
	page, err := c.engine.ListClaims(q.ctx(), q.who, sync.ClaimFilter{Search: number, Limit: 5})
	if err != nil {
		return uuid.Nil, err
	}
	for _, it := range page.Items {
		var cl struct {
			ID     uuid.UUID `json:"id"`
			Number string    `json:"number"`
		}
		if err := decode(it.Claim, &cl); err == nil && strings.EqualFold(cl.Number, number) {
			return cl.ID, nil
		}
	}
	return uuid.Nil, nil
}
