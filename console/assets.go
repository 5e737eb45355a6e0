package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

// The stylesheet, the console's script and the vendored htmx (assets/vendor/README.md says which
// version and where it came from), embedded in the binary.
//
//go:embed assets
var assetFS embed.FS

// assets serves the embedded files at content-hashed URLs (assets/<hash>/<name>): a URL names one
// content for ever, so a browser keeps it a year without asking, and a new binary's files get new
// URLs.
type assets struct {
	files map[string]asset // by name (path under assets/)
}

type asset struct {
	hash        string
	body        []byte
	contentType string
}

func loadAssets() (*assets, error) {
	a := &assets{files: map[string]asset{}}
	err := fs.WalkDir(assetFS, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".md") || strings.HasSuffix(p, "LICENSE") {
			return err
		}
		body, err := assetFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		a.files[strings.TrimPrefix(p, "assets/")] = asset{hash: hex.EncodeToString(sum[:6]), body: body, contentType: ct}
		return nil
	})
	return a, err
}

// url is the content-hashed URL of the asset name; templates call it as {{asset "console.css"}}.
func (a *assets) url(name string) (string, error) {
	f, ok := a.files[name]
	if !ok {
		return "", fmt.Errorf("no asset %q", name)
	}
	return Prefix + "/assets/" + f.hash + "/" + name, nil
}

// ServeHTTP serves <hash>/<name>; a hash that is not the file's (an old page after a new
// release) is not found rather than served stale under a URL that promises a content.
func (a *assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hash, name, _ := strings.Cut(r.URL.Path, "/")
	f, ok := a.files[name]
	if !ok || f.hash != hash {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", `"`+f.hash+`"`)
	if r.Header.Get("If-None-Match") == `"`+f.hash+`"` {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(f.body)
}
