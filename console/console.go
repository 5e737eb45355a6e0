// Package console is the processors' and managers' web console, served at /console/ by the one
// binary: server-rendered pages (html/template, embedded with their assets) with htmx for partial
// updates. It is an edge like server: it reads through the engine's list functions (the same
// code as the screens' endpoints, keyset-paged), writes only through the engine's commands (the
// one write path), and signs people in through the account service (its throttle and sessions).
//
// One shape for every screen: a handler takes a *request (the signed-in person, their CSRF token
// and Printer) and returns an error; it renders one page template through render (the whole page,
// or its main element alone for htmx), and a command runs through command, which shows the
// engine's outcome (applied, or the conflict as a sentence) on the page it re-renders.
package console

import (
	"cmp"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/media"
	"github.com/fieldsync/fieldsync/notify"
	"github.com/fieldsync/fieldsync/sync"
)

// Prefix is the path the console is served under.
const Prefix = "/console"

// DefaultIdleTimeout is how long a console session may stay unused before it ends.
const DefaultIdleTimeout = 30 * time.Minute

// Config are the console's settings.
type Config struct {
	// IdleTimeout ends a session unused for this long (DefaultIdleTimeout when zero).
	IdleTimeout time.Duration
	// TrustedProxies are the load balancers whose X-Forwarded-Proto is believed: a session cookie
	// is Secure when the browser reached us over TLS.
	TrustedProxies []*net.IPNet
	// ClientAddr is the caller's network address, as the API works it out (for the login
	// throttle's per-address limit). Nil: the peer address.
	ClientAddr func(*http.Request) string
}

// Deps are the domain services the console uses.
type Deps struct {
	Accounts *account.Service
	Engine   *sync.Engine
	// Media makes the documents' download links; nil without an object store (no files shown).
	Media *media.Service
	// Notify streams the manager's notifications into their pages; nil: no live alerts.
	Notify *notify.Service
	Log    *slog.Logger
	// Now is the clock ("3 s ago"); time.Now when nil.
	Now func() time.Time
}

// Console serves the console's pages.
type Console struct {
	cfg      Config
	accounts *account.Service
	engine   *sync.Engine
	media    *media.Service
	notify   *notify.Service
	log      *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	pages    map[string]*template.Template
	assets   *assets
}

// New builds the console.
func New(cfg Config, deps Deps) (*Console, error) {
	cfg.IdleTimeout = cmp.Or(cfg.IdleTimeout, DefaultIdleTimeout)
	c := &Console{cfg: cfg, accounts: deps.Accounts, engine: deps.Engine, media: deps.Media, notify: deps.Notify,
		log: cmp.Or(deps.Log, slog.New(slog.DiscardHandler)), now: deps.Now, mux: http.NewServeMux()}
	if c.now == nil {
		c.now = time.Now
	}
	if c.cfg.ClientAddr == nil {
		c.cfg.ClientAddr = peerAddr
	}
	var err error
	if c.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	if c.pages, err = parsePages(c.assets); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

// ServeHTTP serves a request under Prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// routes registers every page: one file per screen holds its handlers.
func (c *Console) routes() {
	m := c.mux
	m.Handle("GET "+Prefix+"/assets/", http.StripPrefix(Prefix+"/assets/", c.assets))
	m.HandleFunc("GET "+Prefix+"/{$}", c.page(c.home))
	m.HandleFunc("GET "+Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
	})
	m.HandleFunc("GET "+Prefix+"/sign-in", c.handleSignInPage)
	m.HandleFunc("POST "+Prefix+"/sign-in", c.handleSignIn)
	m.HandleFunc("POST "+Prefix+"/sign-out", c.handleSignOut)
	m.HandleFunc("POST "+Prefix+"/language", c.handleLanguage)

	// Processors.
	m.HandleFunc("GET "+Prefix+"/queue", c.page(c.queue, processor, manager))
	m.HandleFunc("GET "+Prefix+"/claims/{id}", c.page(c.claim, processor, manager))
	m.HandleFunc("GET "+Prefix+"/documents/{id}/file", c.page(c.documentFile(false), processor, manager))
	m.HandleFunc("GET "+Prefix+"/documents/{id}/thumbnail", c.page(c.documentFile(true), processor, manager))
	m.HandleFunc("POST "+Prefix+"/documents/{id}/review", c.page(c.reviewDocument, processor))
	m.HandleFunc("POST "+Prefix+"/claims/{id}/decision", c.page(c.decideClaim, processor))
	m.HandleFunc("POST "+Prefix+"/claims/{id}/payment", c.page(c.recordPayment, processor))

	c.managerRoutes()

	m.HandleFunc(Prefix+"/", c.page(func(q *request) error { return errNotFound }))
}

// home sends each role to its first page.
func (c *Console) home(q *request) error {
	to := Prefix + "/queue"
	if q.who.Role == manager && managerHome != "" {
		to = Prefix + managerHome
	}
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
	return nil
}

func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
