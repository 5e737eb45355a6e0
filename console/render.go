package console

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/fieldsync/fieldsync"
	"github.com/fieldsync/fieldsync/i18n"
)

//go:embed all:templates
var templateFS embed.FS

// View is what the layout needs of every page; each page's data embeds it.
type View struct {
	P     *i18n.Printer
	Who   *fieldsync.Identity
	CSRF  string
	Title string
	// Notice is the outcome of the command that led to this page, if any.
	Notice *Notice
}

// Notice is a command's outcome, shown at the top of the page and announced to screen readers.
type Notice struct {
	// Error is true for a refusal or a lost race, false for a success.
	Error bool
	Text  string
}

// view is the View of q with the page title of key.
func (q *request) view(titleKey string) View {
	return View{P: q.p, Who: q.who, CSRF: q.csrf, Title: q.p.T(titleKey)}
}

// parsePages parses each page template (templates/<name>.html, which defines "main") with the
// shared layout (templates/layout.html) and partials (templates/_<name>.html).
func parsePages(a *assets) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"asset":  a.url,
		"prefix": func() string { return Prefix },
		// val reads an optional amount the template has checked is there.
		"val": func(p *int64) int64 { return *p },
	}
	maps.Copy(funcs, managerFuncs)
	// The layout and the partials (templates/_*.html: pieces of pages several pages share).
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, path := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(path, "templates/"), ".html")
		if name == "layout" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, path)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render answers with page (a template of templates/) over data: the whole document, or for
// htmx the page's main element alone, which htmx swaps in. It is the one way a page is written.
func (c *Console) render(q *request, status int, page string, data any) {
	t, ok := c.pages[page]
	if !ok {
		c.log.ErrorContext(q.r.Context(), "console: no such page template", "page", page)
		http.Error(q.w, "", http.StatusInternalServerError)
		return
	}
	name := "layout"
	if q.htmx() && q.r.Header.Get("HX-Target") == "main" {
		name = "main"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		c.log.ErrorContext(q.r.Context(), "console: render", "page", page, "err", err)
		http.Error(q.w, "", http.StatusInternalServerError)
		return
	}
	h := q.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Vary", "HX-Request, HX-Target")
	q.w.WriteHeader(status)
	_, _ = q.w.Write(buf.Bytes())
}

// contentSecurityPolicy lets pages load their own scripts and styles only; images and files come
// from the object store's presigned links, wherever it is.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' http: https: data:; object-src 'none'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// errorPage is the data of the error page.
type errorPage struct {
	View
	Message string
}

// renderError shows message on the error page.
func (c *Console) renderError(q *request, status int, message string) {
	v := q.view("error.title")
	c.render(q, status, "error", errorPage{View: v, Message: message})
}

// statusOf is the page status shown for a refusal: the same meaning as the API's statuses, for
// the few kinds a page can meet.
var statusOf = map[string]int{
	fieldsync.EINVALID:     http.StatusBadRequest,
	fieldsync.EFORBIDDEN:   http.StatusForbidden,
	fieldsync.ENOTFOUND:    http.StatusNotFound,
	fieldsync.ECONFLICT:    http.StatusConflict,
	fieldsync.ERATELIMIT:   http.StatusTooManyRequests,
	fieldsync.ETOOLARGE:    http.StatusRequestEntityTooLarge,
	fieldsync.EUNAVAILABLE: http.StatusServiceUnavailable,
}

// fail shows err as a page: a domain refusal with its message in the person's language where the
// catalogue has it (by code), anything else as an apology that names the request, never the
// error itself.
func (c *Console) fail(q *request, err error) {
	var fe *fieldsync.Error
	if errors.As(err, &fe) && fe.Kind == fieldsync.EUNAUTHORIZED {
		c.toSignIn(q.w, q.r)
		return
	}
	if errors.As(err, &fe) {
		if status, ok := statusOf[fe.Kind]; ok {
			c.renderError(q, status, c.message(q, fe))
			return
		}
	}
	c.log.ErrorContext(q.r.Context(), "console", "path", q.r.URL.Path, "err", err)
	c.renderError(q, http.StatusInternalServerError, q.p.T("error.internal", q.w.Header().Get("X-Request-Id")))
}

// message is a domain error in the person's words: the catalogue's text for its code and field
// (code.invalid_value.review_note), else for its code, else the engine's message (English).
func (c *Console) message(q *request, fe *fieldsync.Error) string {
	keys := []string{"code." + fe.Code}
	if field, ok := fe.Details["field"].(string); ok {
		keys = append([]string{"code." + fe.Code + "." + field}, keys...)
	}
	for _, key := range keys {
		if text := q.p.T(key); text != key {
			return text
		}
	}
	return fe.Message
}

// localPath returns p when it is a path of the console, else the console's home: a "next" of the
// sign-in form must not send anyone off-site.
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, Prefix+"/") || strings.Contains(p, "\\") {
		return Prefix + "/"
	}
	return u.RequestURI()
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// sanitizeText drops control characters, which the account service refuses in names.
func sanitizeText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
}
