package main

import (
	"context"
	"math"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// slaStory is what the service-level step of the scenario needs of the story before it.
type slaStory struct {
	env      *scenarioEnv
	hotline  *client.Client
	manager  *device
	rep      *device // Hugo, the branch's hospital rep
	repToken string
	customer uuid.UUID // whose second claim nobody accepts in time
	password string
	newUser  func(role, repKind, login, name string) uuid.UUID
}

// visitNotAcceptedInTime is the scenario's service-level step: a second hospitalised claim goes
// to Hugo, who does not accept it within the 30 minutes of its target (the report is moved back
// 31 minutes: the server's clock is what counts, not waiting); the periodic check, run by
// `serve` every FIELDSYNC_TARGETS_EVERY, re-dispatches it to Helena, who came on duty, and Hugo
// is told. The branch's cycle-time figures for the month then match the records' timestamps.
func visitNotAcceptedInTime(ctx context.Context, t *testing.T, s slaStory) {
	t.Helper()
	fcm, pool := s.env.fcm, s.env.db.Pool
	claimID := uuid.New()
	report := map[string]any{"id": claimID, "customer_id": s.customer, "policy_number": "POL-2019-00417", "kind": "hospitalisation",
		"hospitalised": true, "hospital": "Hospital de São João", "description": "Admitted with pneumonia."}
	var intake struct {
		Task map[string]any `json:"task"`
	}
	if err := s.hotline.Do(ctx, http.MethodPost, "/v1/claims", report, &intake); err != nil {
		t.Fatalf("second claim: %v", err)
	}
	if intake.Task == nil || intake.Task["assignee_id"] != s.rep.id().String() {
		t.Fatalf("second visit: %v", intake.Task)
	}
	taskID := uuid.MustParse(intake.Task["id"].(string))

	const helenaToken = "fcm-token-helena-phone"
	helenaID := s.newUser("rep", "hospital", "helena", "Helena Hospital")
	helena := newDevice(t, s.env.base, "helena", s.password, nil)
	helena.signIn(ctx, helenaToken)

	if _, err := pool.Exec(ctx, `UPDATE claims SET created_at = created_at - interval '31 minutes' WHERE id = $1`, claimID); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the visit re-dispatched", func() bool {
		return countRows(t, pool, "tasks", "id = $1 AND assignee_id = $2", taskID, helenaID) == 1
	})
	waitPush(t, fcm, s.repToken, "task_redispatched", "task", taskID)
	waitPush(t, fcm, helenaToken, "task_assigned", "task", taskID)
	helena.syncUntil(ctx, "holding the re-dispatched visit", func() bool {
		return helena.has("task", taskID) && helena.record("task", taskID)["assignee_id"] == helenaID.String()
	})
	s.rep.syncUntil(ctx, "rid of the re-dispatched visit", func() bool {
		return !s.rep.has("task", taskID) && len(s.rep.inbox("task_redispatched", taskID)) == 1
	})
	time.Sleep(2 * time.Second) // more rounds of the check: still once
	if n := countRows(t, pool, "notifications", "entity_id = $1 AND kind = 'task_redispatched'", taskID); n != 1 {
		t.Fatalf("Hugo told %d times", n)
	}

	// The figures of the month, against the records' own timestamps.
	var figures sync.BranchFigures
	if err := s.manager.c.Do(ctx, http.MethodGet, "/v1/branch/figures", nil, &figures); err != nil {
		t.Fatal(err)
	}
	want := cycleTimesOf(t, s.env, figures)
	for i, ct := range figures.CycleTimes {
		w := want[i]
		if ct.Stage != w.Stage || ct.Claims != w.Claims || !near(ct.Median, w.Median) || !near(ct.P90, w.P90) {
			t.Errorf("cycle time %s: %d claims, median %v, p90 %v; the records give %d, %v, %v", ct.Stage, ct.Claims,
				deref(ct.Median), deref(ct.P90), w.Claims, deref(w.Median), deref(w.P90))
		}
	}
	if len(figures.CycleTimes) != len(want) || figures.TargetsBreached != 1 {
		t.Errorf("figures: %d stages, %d targets breached; want %d, 1", len(figures.CycleTimes), figures.TargetsBreached, len(want))
	}
}

// cycleTimesOf computes, in Go, the cycle times of the claims of the figures' branch and period
// from their stored timestamps: what the figures must say.
func cycleTimesOf(t *testing.T, env *scenarioEnv, f sync.BranchFigures) []sync.CycleTime {
	t.Helper()
	rows, err := env.db.Pool.Query(context.Background(), `
		SELECT c.created_at, (SELECT min(accepted_at) FROM tasks WHERE claim_id = c.id AND kind = 'hospital_visit'),
			c.review_at, c.decided_at, c.paid_at
		FROM claims c WHERE c.branch_id = $1 AND c.created_at >= $2 AND c.created_at < $3`, f.BranchID, f.From, f.To)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	took := map[string][]float64{}
	for rows.Next() {
		var reported time.Time
		var accepted, documents, decided, paid *time.Time
		if err := rows.Scan(&reported, &accepted, &documents, &decided, &paid); err != nil {
			t.Fatal(err)
		}
		add := func(stage string, from, to *time.Time) {
			if from != nil && to != nil {
				took[stage] = append(took[stage], to.Sub(*from).Seconds())
			}
		}
		add("report_to_accepted", &reported, accepted)
		add("accepted_to_documents", accepted, documents)
		add("documents_to_decision", documents, decided)
		add("decision_to_payment", decided, paid)
		add("report_to_payment", &reported, paid)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var out []sync.CycleTime
	for _, stage := range sync.CycleStages {
		v := took[stage]
		ct := sync.CycleTime{Stage: stage, Claims: int64(len(v))}
		if len(v) > 0 {
			m, p := percentile(v, 0.5), percentile(v, 0.9)
			ct.Median, ct.P90 = &m, &p
		}
		out = append(out, ct)
	}
	return out
}

// near reports whether two durations in seconds agree to the millisecond (PostgreSQL and Go
// round differently below that), or are both absent.
func near(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 0.001
}

// percentile is PostgreSQL's percentile_cont.
func percentile(v []float64, p float64) float64 {
	v = slices.Sorted(slices.Values(v))
	pos := p * float64(len(v)-1)
	lo := int(math.Floor(pos))
	x := v[lo]
	if lo+1 < len(v) {
		x += (pos - float64(lo)) * (v[lo+1] - v[lo])
	}
	return x
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
