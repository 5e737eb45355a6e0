package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/browsertest"
	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/sync"
	"github.com/google/uuid"
)

// branchWorld is a served fieldsync with notifications on (the alerts stream) and a Shanghai
// branch in yuan: a manager, a processor, Hugo (hospital rep) and Alice (agent), a customer, a
// claim with Hugo's hospital visit, and Hugo's phone signed in and synced.
type branchWorld struct {
	t         *testing.T
	app       *apptest.App
	f         *fixture.Factory
	branch    uuid.UUID
	manager   string
	processor string
	hugo      string
	hugoID    uuid.UUID
	alice     string
	aliceID   uuid.UUID
	customer  uuid.UUID
	claim     uuid.UUID
	number    string
	visit     uuid.UUID
}

func newBranchWorld(t *testing.T) *branchWorld {
	t.Helper()
	a := apptest.New(t, func(s *apptest.Setup) { s.NoNotifications = false })
	ctx := context.Background()
	b, err := a.Accounts.AddBranch(ctx, account.NewBranch{Name: "Shanghai " + uuid.NewString()[:6], TimeZone: "Asia/Shanghai", Currency: "CNY"})
	if err != nil {
		t.Fatal(err)
	}
	w := &branchWorld{t: t, app: a, f: fixture.New(t, a.DB.Pool), branch: b.ID}
	w.manager, _ = w.user("manager", "", "Maria Manager")
	w.processor, _ = w.user("processor", "", "Paul Processor")
	w.hugo, w.hugoID = w.user("rep", "hospital", "Hugo Hospital")
	w.alice, w.aliceID = w.user("rep", "agent", "Alice Agent")
	w.customer = w.f.Customer(fixture.Customer{Branch: w.branch, Name: "Wang Fang", Agent: w.aliceID})
	w.claim, w.number = w.f.Claim(fixture.Claim{Branch: w.branch, Customer: w.customer, Hospital: "Shanghai General Hospital",
		Status: "collecting", AmountClaimed: 1250000, Hospitalised: true})
	w.visit = w.f.Task(fixture.Task{Claim: w.claim, Assignee: w.hugoID, Kind: "hospital_visit", Title: "Visit Wang Fang"})
	return w
}

func (w *branchWorld) user(role, repKind, name string) (string, uuid.UUID) {
	w.t.Helper()
	return newUser(w.t, w.app, w.branch, role, repKind, name)
}

// phone signs login in from a phone of its own.
func (w *branchWorld) phone(login, name string) *client.Client {
	w.t.Helper()
	c := client.New(w.app.URL, http.DefaultClient, client.Device{ID: uuid.New(), Platform: "android", Name: name, AppVersion: "2.4.0"})
	if err := c.Login(context.Background(), login, password); err != nil {
		w.t.Fatal(err)
	}
	return c
}

// signIn opens a tab on the task board signed in as login, in lang.
func (w *branchWorld) signIn(login, lang string) context.Context {
	w.t.Helper()
	return signInTab(w.t, w.app.URL, "/console/board", login, lang)
}

// pullAll pulls for c from cursor until nothing more waits, returning the changes and the cursor.
func pullAll(t *testing.T, c *client.Client, cursor string) ([]client.Change, string) {
	t.Helper()
	var all []client.Change
	for {
		page, err := c.Pull(context.Background(), cursor, 500, 0)
		if err != nil {
			t.Fatal(err)
		}
		all, cursor = append(all, page.Changes...), page.Cursor
		if !page.HasMore {
			return all, cursor
		}
	}
}

// pullUntil pulls for c from cursor (long-polling) until the changes so far satisfy done, for up
// to 30 s: a change reaches a pull once every transaction older than it has ended.
func pullUntil(t *testing.T, c *client.Client, cursor string, done func([]client.Change) bool) []client.Change {
	t.Helper()
	var all []client.Change
	deadline := time.Now().Add(30 * time.Second)
	for !done(all) {
		if time.Now().After(deadline) {
			t.Fatalf("pulls did not bring what was expected in 30 s: %+v", all)
		}
		page, err := c.Pull(context.Background(), cursor, 500, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		all, cursor = append(all, page.Changes...), page.Cursor
	}
	return all
}

func holds(changes []client.Change, id uuid.UUID) (seen, removed bool) {
	for _, c := range changes {
		if c.ID == id {
			seen = true
			removed = c.Op == "delete" || c.Op == "leave"
		}
	}
	return seen, removed
}

// TestManagerReassignsAndTheOldRepsPullRemovesTheTask: on the board, the manager reassigns
// Hugo's visit to Alice; Hugo's next pull takes it off his phone, Alice's brings it.
func TestManagerReassignsAndTheOldRepsPullRemovesTheTask(t *testing.T) {
	w := newBranchWorld(t)
	hugo := w.phone(w.hugo, "Hugo's phone")
	changes, cursor := pullAll(t, hugo, "")
	if seen, _ := holds(changes, w.visit); !seen {
		t.Fatal("Hugo's phone does not hold his visit to begin with")
	}

	tab := w.signIn(w.manager, "en")
	card := "#task-" + w.visit.String()
	wantContains(t, "board", text(t, tab, card), "Visit Wang Fang", w.number, "Hugo Hospital")
	browsertest.Screenshot(t, tab, "manager-board-en")
	browsertest.Do(t, tab, "reassign to Alice",
		chromedp.SetValue(chromedp.CSS(card+` select[name="assignee_id"]`), w.aliceID.String()),
		chromedp.Click(chromedp.CSS(card+` button[name="assign"]`)),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	wantContains(t, "notice", text(t, tab, "#notice"), "Task assigned")
	wantContains(t, "card", text(t, tab, card), "Alice Agent")

	pullUntil(t, hugo, cursor, func(changes []client.Change) bool {
		_, removed := holds(changes, w.visit)
		return removed
	})
	alice := w.phone(w.alice, "Alice's phone")
	changes, _ = pullAll(t, alice, "")
	if seen, removed := holds(changes, w.visit); !seen || removed {
		t.Fatalf("Alice's snapshot: the visit seen %v, removed %v", seen, removed)
	}
}

// submitGet clicks the button of a GET form and waits until the page it loads has replaced this
// one: the old page is marked first, and the mark is gone once the new document is there. A wait
// for an element right after the click could otherwise find it on the old page.
func submitGet(button chromedp.ID) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Evaluate[chromedp.Void](`document.body.dataset.leaving = "1"`),
		chromedp.Click(button),
		chromedp.WaitNotPresent(chromedp.CSS("body[data-leaving]")),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
}

// TestManagerBoardFilterCancelReopenChinese: in Chinese, the board filters by assignee and
// search; the manager cancels a task and reopens it with a reason, through the engine's commands.
func TestManagerBoardFilterCancelReopenChinese(t *testing.T) {
	w := newBranchWorld(t)
	other := w.f.Task(fixture.Task{Claim: w.claim, Assignee: w.aliceID, Kind: "follow_up", Title: "Call the family"})
	tab := w.signIn(w.manager, "zh-CN")
	wantContains(t, "board", text(t, tab, "h1"), "任务看板")

	browsertest.Do(t, tab, "filter by Alice",
		chromedp.SetValue(chromedp.ID("f-assignee"), w.aliceID.String()),
		submitGet(chromedp.ID("filter")),
		chromedp.WaitVisible(chromedp.ID("task-"+other.String())),
	)
	if n := browsertest.Get(t, tab, "count visits", chromedp.Evaluate[int](`document.querySelectorAll("#task-`+w.visit.String()+`").length`)); n != 0 {
		t.Error("the filter by Alice shows Hugo's visit")
	}
	browsertest.Do(t, tab, "search a title",
		chromedp.SetValue(chromedp.ID("f-assignee"), ""),
		chromedp.SetValue(chromedp.ID("f-q"), "Visit Wang"),
		submitGet(chromedp.ID("filter")),
		chromedp.WaitVisible(chromedp.ID("task-"+w.visit.String())),
	)
	if n := browsertest.Get(t, tab, "count others", chromedp.Evaluate[int](`document.querySelectorAll("#task-`+other.String()+`").length`)); n != 0 {
		t.Error("the search for the visit shows the follow-up")
	}

	card := "#task-" + w.visit.String()
	browsertest.Do(t, tab, "cancel", chromedp.Click(chromedp.CSS(card+` button[name="cancel"]`)), chromedp.WaitVisible(chromedp.ID("notice")), settled())
	wantContains(t, "notice", text(t, tab, "#notice"), "任务已取消")
	wantContains(t, "card", text(t, tab, card), "重新打开")
	browsertest.Do(t, tab, "reopen",
		chromedp.SendKeys(chromedp.CSS(card+` input[name="reason"]`), "家属要求再次探访"),
		chromedp.Click(chromedp.CSS(card+` button[name="reopen"]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("notice").textContent !== "任务已取消。"`),
	)
	wantContains(t, "notice", text(t, tab, "#notice"), "任务已重新打开")
	var status string
	var assignee *uuid.UUID
	if err := w.app.DB.Pool.QueryRow(context.Background(), `SELECT status, assignee_id FROM tasks WHERE id = $1`, w.visit).
		Scan(&status, &assignee); err != nil {
		t.Fatal(err)
	}
	if status != "assigned" || assignee == nil || *assignee != w.hugoID {
		t.Fatalf("after reopening: %s for %v, want assigned to Hugo again", status, assignee)
	}
	var notes int
	if err := w.app.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM task_notes WHERE task_id = $1 AND body LIKE '%家属要求再次探访%'`,
		w.visit).Scan(&notes); err != nil || notes != 1 {
		t.Fatalf("the reopening's reason is on the task %d times (%v)", notes, err)
	}
	browsertest.Screenshot(t, tab, "manager-board-zh")
}

// TestManagerSeesThePayoutAlertWithoutReloading: the manager's alerts page is open; a processor
// pays a claim; the alert (in Chinese, in yuan) and the month's new totals appear without a reload.
func TestManagerSeesThePayoutAlertWithoutReloading(t *testing.T) {
	w := newBranchWorld(t)
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			ctx := context.Background()
			mgr, err := w.app.Accounts.FindUserIDByLogin(ctx, w.manager)
			if err != nil {
				t.Fatal(err)
			}
			tab := w.signIn(w.manager, lang)
			// Choosing Chinese in the console made it the account's language, which the
			// notification texts follow; English is no choice (the browser's).
			var locale *string
			if err := w.app.DB.Pool.QueryRow(ctx, `SELECT locale FROM users WHERE id = $1`, mgr).Scan(&locale); err != nil {
				t.Fatal(err)
			}
			if (lang == "en") != (locale == nil) || (locale != nil && *locale != lang) {
				t.Fatalf("the account's language is %v after choosing %s", locale, lang)
			}
			browsertest.Do(t, tab, "open alerts", chromedp.Navigate(w.app.URL+"/console/alerts"), chromedp.WaitVisible(chromedp.ID("totals")))
			before := text(t, tab, "#month-paid")
			// The stream is open once the page says so.
			browsertest.Do(t, tab, "wait for the stream", chromedp.WaitVisible(chromedp.CSS("#live-state[data-open]")))

			claim, _ := w.f.Claim(fixture.Claim{Branch: w.branch, Customer: w.customer, Status: "approved", AmountClaimed: 300000})
			proc, err := w.app.Accounts.FindUserIDByLogin(ctx, w.processor)
			if err != nil {
				t.Fatal(err)
			}
			who := &fieldsync.Identity{UserID: proc, Role: fieldsync.RoleProcessor, BranchID: w.branch, Name: "Paul"}
			if _, err := w.app.Engine.RecordPayment(ctx, who, claim, json.RawMessage(`250000`), nil); err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"en": "CN¥2,500.00", "zh-CN": "￥2,500.00"}[lang]
			browsertest.Do(t, tab, "the alert arrives", chromedp.WaitVisible(chromedp.CSS("#alerts li.fresh")))
			wantContains(t, "alert", text(t, tab, "#alerts li.fresh"), want)
			browsertest.Do(t, tab, "the totals change", chromedp.Poll[chromedp.Void](`document.getElementById("month-paid").textContent.trim() !== `+jsString(before)))
			if got := text(t, tab, "#month-paid"); got == before || !strings.Contains(got, "2,500.00") && !strings.Contains(before, "2,500") {
				t.Errorf("month's totals %q, before %q", got, before)
			}
			browsertest.Screenshot(t, tab, "manager-alerts-"+lang)
		})
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestManagerDevicesAndWhyNotVisible: Hugo's phone last synced two days ago, which the devices
// page says in words; and the why page tells why Alice does not see Hugo's visit, in both
// languages.
func TestManagerDevicesAndWhyNotVisible(t *testing.T) {
	w := newBranchWorld(t)
	hugo := w.phone(w.hugo, "Pixel 8")
	pullAll(t, hugo, "")
	if _, err := w.app.DB.Pool.Exec(context.Background(), `UPDATE devices SET last_pull_at = now() - interval '50 hours',
		last_push_at = now() - interval '52 hours', last_seen_at = now() - interval '50 hours' WHERE user_id = $1`, w.hugoID); err != nil {
		t.Fatal(err)
	}
	alice := w.phone(w.alice, "iPhone 15")
	pullAll(t, alice, "")

	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			tab := w.signIn(w.manager, lang)
			browsertest.Do(t, tab, "devices", chromedp.Navigate(w.app.URL+"/console/devices"), chromedp.WaitVisible(chromedp.ID("devices")))
			want := map[string]string{"en": "Hugo Hospital's Pixel 8 has not synced for 2 days.", "zh-CN": "Hugo Hospital 的 Pixel 8 已有 2 天未同步。"}[lang]
			wantContains(t, "devices", text(t, tab, "main"), want, "iPhone 15", "2.4.0")
			browsertest.Screenshot(t, tab, "manager-devices-"+lang)

			browsertest.Do(t, tab, "ask why",
				chromedp.Navigate(w.app.URL+"/console/why"),
				chromedp.WaitVisible(chromedp.ID("ask")),
				chromedp.SetValue(chromedp.ID("w-user"), w.aliceID.String()),
				chromedp.SetValue(chromedp.ID("w-type"), sync.TypeTask),
				chromedp.SendKeys(chromedp.ID("w-record"), w.visit.String()),
				chromedp.Click(chromedp.ID("ask")),
				chromedp.WaitVisible(chromedp.ID("answer")),
			)
			want = map[string]string{"en": "The task is not assigned to Alice Agent.", "zh-CN": "这个任务没有分配给 Alice Agent。"}[lang]
			wantContains(t, "answer", text(t, tab, "#answer"), want)
			browsertest.Screenshot(t, tab, "manager-why-"+lang)

			// The claim, by its number: Hugo's visit brings it to him.
			browsertest.Do(t, tab, "ask about the claim",
				chromedp.Navigate(w.app.URL+"/console/why?type=claim&user="+w.hugoID.String()+"&record="+w.number),
				chromedp.WaitVisible(chromedp.ID("answer")),
			)
			want = map[string]string{"en": "Hugo Hospital's phone holds this record.", "zh-CN": "Hugo Hospital 的手机上有这条记录。"}[lang]
			wantContains(t, "answer", text(t, tab, "#answer"), want)
		})
	}
}

// TestManagerPagesRender: the claims list, conflict log and figures (with their charts) render
// in both languages, with the branch's data in its currency; screenshots of each.
func TestManagerPagesRender(t *testing.T) {
	w := newBranchWorld(t)
	premium := int64(1000000)
	w.f.Claim(fixture.Claim{Branch: w.branch, Customer: w.customer, Status: "paid", AmountClaimed: 500000, AmountPaid: 400000,
		Premium: &premium, PaidAt: time.Now().Add(-time.Hour)})
	// A conflict: Hugo completes offline a task the manager cancelled meanwhile.
	ctx := context.Background()
	mgr, _ := w.app.Accounts.FindUserIDByLogin(ctx, w.manager)
	if _, err := w.app.Engine.CancelTask(ctx, &fieldsync.Identity{UserID: mgr, Role: fieldsync.RoleManager, BranchID: w.branch}, w.visit, nil); err != nil {
		t.Fatal(err)
	}
	hugo := w.phone(w.hugo, "Hugo's phone")
	var base int64
	if err := w.app.DB.Pool.QueryRow(ctx, `SELECT version - 1 FROM tasks WHERE id = $1`, w.visit).Scan(&base); err != nil {
		t.Fatal(err)
	}
	if _, err := hugo.Push(ctx, []client.Mutation{{ID: uuid.New(), Type: "task", Op: "update", EntityID: w.visit, BaseVersion: base,
		Fields: map[string]any{"status": "completed"}}}); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			tab := w.signIn(w.manager, lang)
			browsertest.Do(t, tab, "claims", chromedp.Navigate(w.app.URL+"/console/claims"), chromedp.WaitVisible(chromedp.CSS("main table")))
			wantContains(t, "claims", text(t, tab, "main table"), w.number, "Wang Fang")
			browsertest.Screenshot(t, tab, "manager-claims-"+lang)

			browsertest.Do(t, tab, "conflicts", chromedp.Navigate(w.app.URL+"/console/conflicts"), chromedp.WaitVisible(chromedp.CSS("main table")))
			wantContains(t, "conflicts", text(t, tab, "main table"), "status", "Hugo Hospital", map[string]string{"en": "Status rules", "zh-CN": "状态规则"}[lang])
			browsertest.Screenshot(t, tab, "manager-conflicts-"+lang)

			browsertest.Do(t, tab, "figures", chromedp.Navigate(w.app.URL+"/console/figures"), chromedp.WaitVisible(chromedp.CSS("svg.chart")))
			wantContains(t, "figures", text(t, tab, "#paid-amount"), map[string]string{"en": "CN¥4,000.00", "zh-CN": "￥4,000.00"}[lang])
			bars := browsertest.Get(t, tab, "bars", chromedp.Evaluate[int](`document.querySelectorAll("svg.chart rect.bar").length`))
			if bars == 0 {
				t.Error("the charts have no bars")
			}
			wantContains(t, "weeks", text(t, tab, "#weeks"), "40%")
			browsertest.Screenshot(t, tab, "manager-figures-"+lang)
		})
	}
}
