package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/i18n"
	"github.com/fieldsync/fieldsync/internal/forwarded"
	"github.com/google/uuid"
)

// Cookies. The session cookie is HttpOnly, SameSite=Lax (a link from an e-mail to a claim opens
// signed in; a cross-site POST carries no cookie) and Secure when the browser came over TLS. The
// device cookie keeps one device row per browser across sign-ins; the sign-in cookie is the
// double-submitted CSRF token of the sign-in form (there is no session yet to hold one); the
// language cookie is the person's choice until their account has one.
const (
	sessionCookie = "fs_session"
	deviceCookie  = "fs_device"
	signInCookie  = "fs_signin"
	langCookie    = "fs_lang"
	csrfField     = "_csrf"
	csrfHeader    = "X-CSRF-Token"
)

const (
	processor = fieldsync.RoleProcessor
	manager   = fieldsync.RoleManager
)

// consoleRoles may use the console; everyone else is asked to use the app.
var consoleRoles = []string{processor, manager}

// request is one signed-in request: what every page handler is given.
type request struct {
	w    http.ResponseWriter
	r    *http.Request
	who  *fieldsync.Identity
	csrf string
	p    *i18n.Printer
}

func (q *request) ctx() context.Context { return q.r.Context() }

// htmx reports whether htmx made the request (it swaps the answer's main element in).
func (q *request) htmx() bool { return q.r.Header.Get("HX-Request") == "true" }

var errNotFound = fieldsync.Errorf(fieldsync.ENOTFOUND, "not_found", "There is no such page.")

// page wraps a handler: the session cookie must name a live session (else the sign-in page), a
// POST must carry the session's CSRF token, and the person must have one of roles (a rep or an
// admin is asked to use the app; a processor on a manager's page is refused). No roles: any
// console role.
func (c *Console) page(h func(*request) error, roles ...string) http.HandlerFunc {
	if len(roles) == 0 {
		roles = consoleRoles
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		cookie, _ := r.Cookie(sessionCookie)
		var token string
		if cookie != nil {
			token = cookie.Value
		}
		s, err := c.accounts.FindWebSession(r.Context(), token, c.cfg.IdleTimeout)
		if err != nil {
			if fieldsync.ErrorKind(err) != fieldsync.EUNAUTHORIZED {
				c.fail(&request{w: w, r: r, p: c.printer(r, nil)}, err)
				return
			}
			c.toSignIn(w, r)
			return
		}
		q := &request{w: w, r: r.WithContext(fieldsync.NewContextWithIdentity(r.Context(), s.Identity)), who: s.Identity, csrf: s.CSRF}
		q.p = c.printer(r, s.Identity)
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !sameToken(s.CSRF, csrfOf(r)) {
			c.renderError(q, http.StatusForbidden, q.p.T("error.csrf"))
			return
		}
		if !slices.Contains(consoleRoles, s.Identity.Role) {
			c.render(q, http.StatusForbidden, "useapp", q.view("useapp.title"))
			return
		}
		if !slices.Contains(roles, s.Identity.Role) {
			c.renderError(q, http.StatusForbidden, q.p.T("error.role"))
			return
		}
		if err := h(q); err != nil {
			c.fail(q, err)
		}
	}
}

// toSignIn sends the browser to the sign-in page, coming back to where it was going. htmx is told
// to load the page whole (HX-Redirect), not to swap a sign-in form into a fragment.
func (c *Console) toSignIn(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Path
	if r.Method != http.MethodGet {
		next = r.Header.Get("HX-Current-URL")
		if next == "" {
			next = Prefix + "/"
		}
	}
	to := Prefix + "/sign-in?next=" + urlQueryEscape(localPath(next))
	if r.Header.Get("HX-Request") == "true" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// csrfOf is the CSRF token a request carries: htmx sends it as a header, plain forms as a field.
func csrfOf(r *http.Request) string {
	if v := r.Header.Get(csrfHeader); v != "" {
		return v
	}
	return r.PostFormValue(csrfField)
}

func sameToken(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// secure reports whether cookies must be Secure: the browser reached us over TLS, itself or
// through a trusted proxy.
func (c *Console) secure(r *http.Request) bool {
	return forwarded.Scheme(r, c.cfg.TrustedProxies) == "https"
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: c.secure(r), SameSite: http.SameSiteLaxMode})
}

// signInPage is the sign-in form's data.
type signInPage struct {
	View
	Login string
	Next  string
	Error string
}

func (c *Console) handleSignInPage(w http.ResponseWriter, r *http.Request) {
	c.showSignIn(w, r, http.StatusOK, "", "")
}

func (c *Console) showSignIn(w http.ResponseWriter, r *http.Request, status int, login, problem string) {
	w.Header().Set("Cache-Control", "no-store")
	token := ""
	if ck, err := r.Cookie(signInCookie); err == nil && len(ck.Value) >= 26 && len(ck.Value) <= 100 {
		token = ck.Value
	} else {
		token = rand.Text()
		c.setCookie(w, r, signInCookie, token, time.Hour)
	}
	q := &request{w: w, r: r, p: c.printer(r, nil), csrf: token}
	v := q.view("signin.title")
	c.render(q, status, "signin", signInPage{View: v, Login: login, Next: localPath(r.FormValue("next")), Error: problem})
}

// handleSignIn checks the credentials through the account service (its throttle included) and
// opens a session on this browser's device.
func (c *Console) handleSignIn(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	ck, _ := r.Cookie(signInCookie)
	login := r.PostFormValue("login")
	p := c.printer(r, nil)
	if ck == nil || !sameToken(ck.Value, r.PostFormValue(csrfField)) {
		c.showSignIn(w, r, http.StatusForbidden, login, p.T("error.csrf"))
		return
	}
	device := uuid.Nil
	if d, err := r.Cookie(deviceCookie); err == nil {
		device, _ = uuid.Parse(d.Value)
	}
	if device == uuid.Nil {
		device = uuid.Must(uuid.NewV7())
	}
	token, s, err := c.accounts.SignInWeb(r.Context(), account.LoginRequest{Login: login, Password: r.PostFormValue("password"),
		Device: account.Device{ID: device, Name: deviceName(r)}}, c.cfg.ClientAddr(r), c.cfg.IdleTimeout)
	if err != nil {
		var fe *fieldsync.Error
		switch {
		case errors.As(err, &fe) && fe.Kind == fieldsync.ERATELIMIT:
			c.showSignIn(w, r, http.StatusTooManyRequests, login, p.T("signin.throttled"))
		case errors.As(err, &fe) && (fe.Kind == fieldsync.EUNAUTHORIZED || fe.Kind == fieldsync.EINVALID):
			c.showSignIn(w, r, http.StatusUnauthorized, login, p.T("signin.wrong"))
		case errors.As(err, &fe) && fe.Kind == fieldsync.EFORBIDDEN:
			c.showSignIn(w, r, http.StatusForbidden, login, p.T("signin.refused"))
		default:
			c.fail(&request{w: w, r: r, p: p}, err)
		}
		return
	}
	c.setCookie(w, r, deviceCookie, device.String(), 400*24*time.Hour)
	c.setCookie(w, r, sessionCookie, token, 0)
	c.setCookie(w, r, signInCookie, "", -1)
	next := localPath(r.PostFormValue("next"))
	if !slices.Contains(consoleRoles, s.Identity.Role) {
		next = Prefix + "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// handleSignOut ends the session (with the CSRF token of the page it came from) and shows the
// sign-in page.
func (c *Console) handleSignOut(w http.ResponseWriter, r *http.Request) {
	ck, _ := r.Cookie(sessionCookie)
	if ck != nil {
		s, err := c.accounts.FindWebSession(r.Context(), ck.Value, c.cfg.IdleTimeout)
		if err == nil && !sameToken(s.CSRF, csrfOf(r)) {
			http.Error(w, "", http.StatusForbidden)
			return
		}
		if err := c.accounts.SignOutWeb(r.Context(), ck.Value); err != nil {
			c.fail(&request{w: w, r: r, p: c.printer(r, nil)}, err)
			return
		}
	}
	c.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"/sign-in", http.StatusSeeOther)
}

// handleLanguage keeps the language a person chose (in a cookie) and shows the page they were on.
func (c *Console) handleLanguage(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if lang := r.PostFormValue("lang"); i18n.Supported(lang) {
		c.setCookie(w, r, langCookie, lang, 400*24*time.Hour)
		// Signed in, the choice is the account's too: the notifications pushed to the person's
		// phone follow it (account.Service.SetUserLocale).
		if ck, err := r.Cookie(sessionCookie); err == nil {
			if s, err := c.accounts.FindWebSession(r.Context(), ck.Value, c.cfg.IdleTimeout); err == nil {
				if err := c.accounts.SetUserLocale(r.Context(), s.Identity.UserID, lang); err != nil {
					c.log.WarnContext(r.Context(), "console: keep the language", "err", err)
				}
			}
		}
	}
	http.Redirect(w, r, localPath(r.PostFormValue("next")), http.StatusSeeOther)
}

// printer is the Printer of a request: the language the person chose (the language cookie, else
// their account's), else their browser's; times and amounts in their branch's zone and currency.
// who is nil before sign-in.
func (c *Console) printer(r *http.Request, who *fieldsync.Identity) *i18n.Printer {
	pref := ""
	if ck, err := r.Cookie(langCookie); err == nil {
		pref = ck.Value
	}
	// Before sign-in no page shows a time or an amount of a branch.
	loc, currency := time.UTC, ""
	if who != nil {
		// The account's language when the browser has chosen none; the branch's zone and
		// currency (account.Service.FindPreferences, migration 00012).
		if prefs, err := c.accounts.FindPreferences(r.Context(), who.UserID); err == nil {
			if pref == "" {
				pref = prefs.Locale
			}
			loc, currency = prefs.Location(), prefs.Currency
		}
	}
	return i18n.New(i18n.Match(pref, r.Header.Get("Accept-Language")), loc, currency)
}

// deviceName names the browser's device row, for the devices page.
func deviceName(r *http.Request) string {
	ua := r.UserAgent()
	if len(ua) > 120 {
		ua = ua[:120]
	}
	return "Console: " + sanitizeText(ua)
}
