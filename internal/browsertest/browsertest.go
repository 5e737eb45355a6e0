// Package browsertest drives a real browser (Debian's chromium, headless, through chromedp) for
// the console's end-to-end tests. Chromium starts slowly on a small machine, so a package starts
// one browser in its TestMain and each test opens its own tab in a browser context of its own
// (its own cookies), which it closes when the test ends.
package browsertest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fieldsync/fieldsync/internal/testenv"
)

// Browser is one headless chromium.
type Browser struct {
	ctx     context.Context
	cancel  func()
	dataDir string
}

// ErrNoBrowser is returned by Start when no chromium is installed.
var ErrNoBrowser = errors.New("browsertest: no chromium (install Debian's chromium, or set FIELDSYNC_CHROMIUM)")

// Start starts chromium: $FIELDSYNC_CHROMIUM, else chromium on PATH. Its flags keep it off the
// network but for the pages it is sent to (no background updates, sync, or QUIC probes) and in
// a fresh profile.
func Start() (*Browser, error) {
	path := os.Getenv("FIELDSYNC_CHROMIUM")
	if path == "" {
		var err error
		if path, err = exec.LookPath("chromium"); err != nil {
			return nil, ErrNoBrowser
		}
	}
	dir, err := os.MkdirTemp("", "fieldsync-chromium-")
	if err != nil {
		return nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(dir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	// The first Do starts the browser, on a context without a deadline: the browser lives as
	// long as that context.
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("browsertest: start %s: %w", path, err)
	}
	return &Browser{ctx: bctx, cancel: func() { bcancel(); acancel() }, dataDir: dir}, nil
}

// Close stops the browser and removes its profile.
func (b *Browser) Close() {
	b.cancel()
	os.RemoveAll(b.dataDir)
}

// Tab opens a tab in a browser context of its own (no cookies shared with other tests), closed
// when the test ends. Every action in it must finish within two minutes.
func (b *Browser) Tab(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("open a tab: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	return ctx
}

// Do runs steps in the tab, failing the test with what was being done.
func Do(t testing.TB, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(tab, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Get runs one action that returns a value, failing the test with what was being done.
func Get[T any](t testing.TB, tab context.Context, what string, action chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(tab, action)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// ArtefactDir is where screenshots go: $FIELDSYNC_ARTEFACTS, else artefacts/ at the module's
// root (gitignored).
func ArtefactDir() string {
	if dir := os.Getenv("FIELDSYNC_ARTEFACTS"); dir != "" {
		return dir
	}
	wd, _ := os.Getwd()
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "artefacts")
		}
		if filepath.Dir(dir) == dir {
			return cmp.Or(wd, ".")
		}
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Screenshot saves the whole page as ArtefactDir()/<name>.png and returns its path.
func Screenshot(t testing.TB, tab context.Context, name string) string {
	t.Helper()
	png := Get(t, tab, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := ArtefactDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var (
	sharedOnce sync.Once
	shared     *Browser
	sharedErr  error
)

// Shared is the package's one browser, started by the first test that asks and stopped when
// testenv.Main has run the tests (the package's TestMain must call it). Without chromium the
// test is skipped, saying so; a chromium that does not start fails it.
func Shared(t testing.TB) *Browser {
	t.Helper()
	sharedOnce.Do(func() {
		shared, sharedErr = Start()
		if sharedErr == nil {
			testenv.AtExit(shared.Close)
		}
	})
	if errors.Is(sharedErr, ErrNoBrowser) {
		t.Skip(sharedErr)
	}
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}
