package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/fieldsync/fieldsync/internal/browsertest"
	"github.com/fieldsync/fieldsync/internal/client"
	"github.com/fieldsync/fieldsync/internal/fixture"
	"github.com/fieldsync/fieldsync/internal/testenv"
	"github.com/google/uuid"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const password = "correct horse battery"

// world is a served fieldsync with a branch: two processors, a manager, an agent rep with a
// customer, and a claim under review whose photo the rep uploaded (real bytes, through tus, made
// a thumbnail of by the media jobs).
type world struct {
	t          *testing.T
	app        *apptest.App
	f          *fixture.Factory
	branch     uuid.UUID
	processor  string
	processor2 string
	rep        string
	repID      uuid.UUID
	claim      uuid.UUID
	number     string
	photo      uuid.UUID
}

func newWorld(t *testing.T) *world {
	t.Helper()
	a := apptest.New(t, func(s *apptest.Setup) { s.S3 = testenv.S3(t) })
	w := &world{t: t, app: a, f: fixture.New(t, a.DB.Pool), branch: a.Branch(t)}
	w.processor = w.user("processor", "", "Paul Processor")
	w.processor2 = w.user("processor", "", "Petra Processor")
	w.rep = w.user("rep", "agent", "Alice Agent")
	var err error
	if w.repID, err = a.Accounts.FindUserIDByLogin(context.Background(), w.rep); err != nil {
		t.Fatal(err)
	}
	customer := w.f.Customer(fixture.Customer{Branch: w.branch, Name: "Wang Fang", Phone: "+86 138 0000 0000", Agent: w.repID})
	w.claim, w.number = w.f.Claim(fixture.Claim{Branch: w.branch, Customer: customer, Hospital: "Shanghai General Hospital",
		AmountClaimed: 1250000, Hospitalised: true})
	task := w.f.Task(fixture.Task{Claim: w.claim, Assignee: w.repID, Kind: "document_collection", Title: "Collect the invoice"})
	w.f.Note(task, w.repID, "The customer will bring the discharge summary on Monday.")
	w.photo = w.upload(task)
	// Claims of others in the queue, for it to look like a day's work.
	for i, name := range []string{"Li Wei", "Zhang Min", "Chen Jie"} {
		c := w.f.Customer(fixture.Customer{Branch: w.branch, Name: name, Agent: w.repID})
		id, _ := w.f.Claim(fixture.Claim{Branch: w.branch, Customer: c, Hospital: []string{"Ruijin Hospital", "Huashan Hospital", "Zhongshan Hospital"}[i],
			Status: []string{"under_review", "collecting", "under_review"}[i], AmountClaimed: int64(380000 + 125000*i)})
		for range i + 1 {
			w.f.Document(id, w.repID, "uploaded")
		}
	}
	return w
}

func (w *world) user(role, repKind, name string) string {
	w.t.Helper()
	login, _ := newUser(w.t, w.app, w.branch, role, repKind, name)
	return login
}

// repClient is the rep's phone, signed in.
func (w *world) repClient() *client.Client {
	w.t.Helper()
	c := client.New(w.app.URL, http.DefaultClient, client.Device{ID: uuid.New(), Platform: "android", Name: "rep phone"})
	if err := c.Login(context.Background(), w.rep, password); err != nil {
		w.t.Fatal(err)
	}
	return c
}

// upload has the rep create a photo document of the claim and upload media/testdata's JPEG (with
// EXIF time and GPS), and waits for its thumbnail.
func (w *world) upload(task uuid.UUID) uuid.UUID {
	w.t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile("../media/testdata/photo_exif.jpg")
	if err != nil {
		w.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	rep := w.repClient()
	doc := uuid.New()
	fields := map[string]any{"claim_id": w.claim, "kind": "photo", "file_name": "ward-photo.jpg", "content_type": "image/jpeg",
		"size_bytes": len(data), "sha256": hex.EncodeToString(sum[:])}
	if task != uuid.Nil {
		fields["task_id"] = task
	}
	res, err := rep.Push(ctx, []client.Mutation{{ID: uuid.New(), Type: "document", Op: "create", EntityID: doc, Fields: fields}})
	if err != nil || res[0].Status != "applied" {
		w.t.Fatalf("push the document: %v %+v", err, res)
	}
	u, err := rep.CreateUpload(ctx, doc, int64(len(data)), "ward-photo.jpg")
	if err != nil {
		w.t.Fatal(err)
	}
	if err := rep.Resume(ctx, u, bytes.NewReader(data), len(data)); err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var thumb bool
		if err := w.app.DB.Pool.QueryRow(ctx, `SELECT thumbnail_key IS NOT NULL FROM documents WHERE id = $1`, doc).Scan(&thumb); err != nil {
			w.t.Fatal(err)
		}
		if thumb {
			return doc
		}
		if time.Now().After(deadline) {
			w.t.Fatal("the photo got no thumbnail within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signIn opens a tab on the review queue signed in as login, in lang.
func (w *world) signIn(login, lang string) context.Context {
	w.t.Helper()
	return signInTab(w.t, w.app.URL, "/console/queue", login, lang)
}

func text(t *testing.T, tab context.Context, sel string) string {
	t.Helper()
	browsertest.Do(t, tab, "wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	return strings.TrimSpace(browsertest.Get(t, tab, "read "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// settled waits until htmx has settled the page a command swapped in: the outcome's notice has
// taken the focus (console.js). Keys typed before then would follow the focus to the notice.
func settled() chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](`document.activeElement !== null && document.activeElement.id === "notice"`)
}

func wantContains(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(got, s) {
			t.Errorf("%s = %q, want it to contain %q", what, got, s)
		}
	}
}

// TestConsoleSignInAndQueue: a page asks to sign in, the sign-in form opens the review queue
// with the claim and its document waiting; a rep is asked to use the app; sign-out ends the
// session for real.
func TestConsoleSignInAndQueue(t *testing.T) {
	w := newWorld(t)
	tab := w.signIn(w.processor, "en")
	wantContains(t, "queue", text(t, tab, "main"), "Review queue", w.number, "Wang Fang", "1 of 1")
	if lang := browsertest.Get(t, tab, "lang", chromedp.Evaluate[string](`document.documentElement.lang`)); lang != "en" {
		t.Errorf("html lang = %q", lang)
	}
	browsertest.Screenshot(t, tab, "console-queue-en")

	// Sign out: the session ends on the server, and the old cookie opens nothing.
	cookie := browsertest.Get(t, tab, "cookie", chromedp.Evaluate[string](`document.cookie`))
	if strings.Contains(cookie, "fs_session") {
		t.Errorf("the session cookie is readable by scripts: %q", cookie)
	}
	browsertest.Do(t, tab, "sign out", chromedp.Click(chromedp.ID("sign-out")), chromedp.WaitVisible(chromedp.ID("login")))
	browsertest.Do(t, tab, "queue after sign-out", chromedp.Navigate(w.app.URL+"/console/queue"), chromedp.WaitVisible(chromedp.ID("login")))
	var live int
	if err := w.app.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM web_sessions`).Scan(&live); err != nil || live != 0 {
		t.Fatalf("%d web sessions after sign-out (%v)", live, err)
	}

	rep := w.signInAs(t, w.rep)
	wantContains(t, "rep's page", text(t, rep, "main"), "Please use the app")
}

// signInAs signs in as login from the console's root, in English (a rep has no queue to start on).
func (w *world) signInAs(t *testing.T, login string) context.Context {
	return signInTab(t, w.app.URL, "/console/", login, "en")
}

// TestConsoleRejectPhotoChinese: in Chinese, a processor opens the claim (the photo's thumbnail,
// capture time and GPS shown), rejects the photo with a reason, and the rep's pull has it.
func TestConsoleRejectPhotoChinese(t *testing.T) {
	w := newWorld(t)
	tab := w.signIn(w.processor, "zh-CN")
	wantContains(t, "queue", text(t, tab, "h1"), "审核队列")
	browsertest.Do(t, tab, "open the claim", chromedp.Click(chromedp.CSS(`a[href$="/claims/`+w.claim.String()+`"]`)),
		chromedp.WaitVisible(chromedp.ID("doc-"+w.photo.String())))
	card := text(t, tab, "#doc-"+w.photo.String())
	wantContains(t, "photo card", card, "照片", "ward-photo.jpg", "待审核", "拍摄时间", "位置")
	wantContains(t, "claim", text(t, tab, ".facts"), "Wang Fang", "Shanghai General Hospital", "￥12,500.00")
	waitThumbnails(t, tab)
	browsertest.Screenshot(t, tab, "console-claim-zh")

	sel := "#doc-" + w.photo.String()
	browsertest.Do(t, tab, "reject the photo",
		chromedp.SendKeys(chromedp.CSS(sel+" textarea"), "照片模糊，请重拍"),
		chromedp.Click(chromedp.CSS(sel+` button[value="rejected"]`)),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	wantContains(t, "notice", text(t, tab, "#notice"), "文件已退回")
	wantContains(t, "photo card", text(t, tab, sel), "已退回", "照片模糊，请重拍")

	page, err := w.repClient().Pull(context.Background(), "", 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Changes {
		if c.ID != w.photo {
			continue
		}
		var d struct {
			Status     string `json:"status"`
			ReviewNote string `json:"review_note"`
		}
		if err := json.Unmarshal(c.Data, &d); err != nil {
			t.Fatal(err)
		}
		if d.Status != "rejected" || d.ReviewNote != "照片模糊，请重拍" {
			t.Fatalf("the rep's pull has the photo as %+v", d)
		}
		return
	}
	t.Fatal("the rep's pull has no photo")
}

// TestConsoleApproveAndPay: a processor approves the photo and the claim, and records the
// payment typed in yuan; the claim is paid in fen.
func TestConsoleApproveAndPay(t *testing.T) {
	w := newWorld(t)
	tab := w.signIn(w.processor, "en")
	browsertest.Do(t, tab, "open the claim", chromedp.Navigate(w.app.URL+"/console/claims/"+w.claim.String()),
		chromedp.WaitVisible(chromedp.ID("approve-claim")))
	sel := "#doc-" + w.photo.String()
	browsertest.Do(t, tab, "approve the photo",
		chromedp.Click(chromedp.CSS(sel+` button[value="approved"]`)), chromedp.WaitVisible(chromedp.ID("notice")))
	wantContains(t, "notice", text(t, tab, "#notice"), "Document approved.")
	browsertest.Do(t, tab, "approve the claim",
		chromedp.Click(chromedp.ID("approve-claim")), chromedp.WaitVisible(chromedp.ID("record-payment")), settled())
	wantContains(t, "notice", text(t, tab, "#notice"), "Claim approved.")
	browsertest.Do(t, tab, "record the payment",
		chromedp.SendKeys(chromedp.ID("amount"), "12,345.60"),
		chromedp.Click(chromedp.ID("record-payment")), chromedp.WaitVisible(chromedp.ID("amount-paid")))
	wantContains(t, "notice", text(t, tab, "#notice"), "Payment recorded.")
	wantContains(t, "amount paid", text(t, tab, "#amount-paid"), "CN¥12,345.60")
	var status string
	var paid int64
	if err := w.app.DB.Pool.QueryRow(context.Background(), `SELECT status, amount_paid FROM claims WHERE id = $1`, w.claim).
		Scan(&status, &paid); err != nil {
		t.Fatal(err)
	}
	if status != "paid" || paid != 1234560 {
		t.Fatalf("claim after payment: %s, %d", status, paid)
	}
	browsertest.Screenshot(t, tab, "console-claim-paid-en")
}

// TestConsoleRejectClaimChinese: in Chinese, a processor rejects the whole claim with a reason;
// the page says so, the claim is rejected with the reason on record, and the rep's pull has it.
func TestConsoleRejectClaimChinese(t *testing.T) {
	w := newWorld(t)
	tab := w.signIn(w.processor, "zh-CN")
	browsertest.Do(t, tab, "open the claim", chromedp.Navigate(w.app.URL+"/console/claims/"+w.claim.String()),
		chromedp.WaitVisible(chromedp.ID("reject-claim")))
	browsertest.Do(t, tab, "reject the claim",
		chromedp.SendKeys(chromedp.ID("decision-note"), "保单不涵盖此次住院"),
		chromedp.Click(chromedp.ID("reject-claim")),
		chromedp.WaitVisible(chromedp.ID("notice")),
	)
	wantContains(t, "notice", text(t, tab, "#notice"), "理赔已拒绝")
	wantContains(t, "claim status", text(t, tab, "#claim-status"), "已拒绝")
	wantContains(t, "claim", text(t, tab, ".facts"), "保单不涵盖此次住院")
	browsertest.Screenshot(t, tab, "console-claim-rejected-zh")

	var status, note string
	if err := w.app.DB.Pool.QueryRow(context.Background(), `SELECT status, coalesce(decision_note, '') FROM claims WHERE id = $1`, w.claim).
		Scan(&status, &note); err != nil {
		t.Fatal(err)
	}
	if status != "rejected" || note != "保单不涵盖此次住院" {
		t.Fatalf("the claim after the rejection: %s, %q", status, note)
	}
	page, err := w.repClient().Pull(context.Background(), "", 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Changes {
		if c.ID == w.claim {
			var cl struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(c.Data, &cl); err != nil || cl.Status != "rejected" {
				t.Fatalf("the rep's pull has the claim as %s (%v)", c.Data, err)
			}
			return
		}
	}
	t.Fatal("the rep's pull has no claim")
}

// TestConsoleRaceLost: two processors have the claim open; the second approves the photo first,
// and the first one's rejection is told, in both languages, who decided and when, and changes
// nothing.
func TestConsoleRaceLost(t *testing.T) {
	w := newWorld(t)
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			doc := w.photo
			if lang != "en" {
				doc = w.upload(uuid.Nil)
			}
			tab := w.signIn(w.processor, lang)
			sel := "#doc-" + doc.String()
			browsertest.Do(t, tab, "open the claim", chromedp.Navigate(w.app.URL+"/console/claims/"+w.claim.String()),
				chromedp.WaitVisible(chromedp.CSS(sel+" textarea")))
			other := w.signIn(w.processor2, "en")
			browsertest.Do(t, other, "the other processor approves", chromedp.Navigate(w.app.URL+"/console/claims/"+w.claim.String()),
				chromedp.Click(chromedp.CSS(sel+` button[value="approved"]`)), chromedp.WaitVisible(chromedp.ID("notice")))
			browsertest.Do(t, tab, "reject, too late",
				chromedp.SendKeys(chromedp.CSS(sel+" textarea"), "blurred"),
				chromedp.Click(chromedp.CSS(sel+` button[value="rejected"]`)),
				chromedp.WaitVisible(chromedp.CSS("#notice.error")),
			)
			want := []string{"Another processor already approved this", "s ago. Nothing was changed."}
			if lang != "en" {
				want = []string{"另一位审核员已批准此项", "秒前", "本次未作任何更改"}
			}
			wantContains(t, "notice", text(t, tab, "#notice"), want...)
			wantContains(t, "photo card", text(t, tab, sel), map[string]string{"en": "Approved", "zh-CN": "已通过"}[lang])
			browsertest.Screenshot(t, tab, "console-race-"+lang)
		})
	}
}

// TestConsoleTabletAndKeyboard: at a tablet's width the claim page fits without scrolling
// sideways; the first Tab reaches the skip link; every form control has a label and every image
// a text alternative.
func TestConsoleTabletAndKeyboard(t *testing.T) {
	w := newWorld(t)
	tab := w.signIn(w.processor, "en")
	browsertest.Do(t, tab, "tablet",
		chromedp.EmulateViewport(820, 1180),
		chromedp.Navigate(w.app.URL+"/console/claims/"+w.claim.String()),
		chromedp.WaitVisible(chromedp.ID("approve-claim")),
	)
	if wide := browsertest.Get(t, tab, "width", chromedp.Evaluate[bool](
		`document.documentElement.scrollWidth <= window.innerWidth`)); !wide {
		t.Error("the claim page scrolls sideways at 820 px")
	}
	if htmx := browsertest.Get(t, tab, "htmx", chromedp.Evaluate[string](`typeof window.htmx`)); htmx != "object" {
		t.Errorf("htmx is %s", htmx)
	}
	unlabelled := browsertest.Get(t, tab, "labels", chromedp.Evaluate[[]string](`
		[...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
			.filter(el => !(el.id && document.querySelector("label[for='" + el.id + "']")) && !el.getAttribute("aria-label"))
			.map(el => el.outerHTML)`))
	if len(unlabelled) > 0 {
		t.Errorf("form controls without a label: %v", unlabelled)
	}
	if n := browsertest.Get(t, tab, "alts", chromedp.Evaluate[int](`document.querySelectorAll("img:not([alt])").length`)); n != 0 {
		t.Errorf("%d images without alt", n)
	}
	browsertest.Do(t, tab, "tab", chromedp.KeyEvent("\t"))
	if focused := browsertest.Get(t, tab, "focus", chromedp.Evaluate[string](`document.activeElement.className`)); focused != "skip" {
		t.Errorf("the first Tab focuses %q, want the skip link", focused)
	}
	waitThumbnails(t, tab)
	browsertest.Screenshot(t, tab, "console-claim-tablet-en")
}

// waitThumbnails waits until every thumbnail on the page has loaded (from the object store, through
// the console's redirect to a presigned link).
func waitThumbnails(t *testing.T, tab context.Context) {
	t.Helper()
	browsertest.Get(t, tab, "thumbnails", chromedp.Poll[bool](
		`[...document.querySelectorAll(".doc img")].every(i => i.complete && i.naturalWidth > 0) || undefined`,
		chromedp.WithPollingTimeout(30*time.Second)))
}
