package server

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"

	"github.com/fieldsync/fieldsync/internal/forwarded"
)

// TestForwardedHeadersOnlyFromTrustedProxies: X-Forwarded-Proto and X-Forwarded-For change the
// scheme and the caller's address only when the peer is a configured trusted proxy.
func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	s := New(Config{MaxBodyBytes: 1 << 20, TrustedProxies: []*net.IPNet{proxies}}, Deps{}, slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		peer, proto, xff string
		tls              bool
		scheme, ip       string
	}{
		{peer: "203.0.113.7:5000", scheme: "http", ip: "203.0.113.7"},
		{peer: "203.0.113.7:5000", proto: "https", xff: "198.51.100.1", scheme: "http", ip: "203.0.113.7"},
		{peer: "127.0.0.1:5000", proto: "https", xff: "198.51.100.1", scheme: "http", ip: "127.0.0.1"},
		{peer: "10.1.2.3:5000", proto: "https", xff: "198.51.100.1", scheme: "https", ip: "198.51.100.1"},
		{peer: "10.1.2.3:5000", proto: "HTTPS, http", scheme: "https", ip: "10.1.2.3"},
		{peer: "10.1.2.3:5000", proto: "javascript", scheme: "http", ip: "10.1.2.3"},
		{peer: "10.1.2.3:5000", scheme: "http", ip: "10.1.2.3"},
		{peer: "203.0.113.7:5000", proto: "http", tls: true, scheme: "https", ip: "203.0.113.7"},
	} {
		req := httptest.NewRequest("GET", "/healthz", nil)
		req.RemoteAddr = c.peer
		if c.proto != "" {
			req.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if c.xff != "" {
			req.Header.Set("X-Forwarded-For", c.xff)
		}
		if c.tls {
			req.TLS = &tls.ConnectionState{}
		}
		ctx := s.echo.NewContext(req, httptest.NewRecorder())
		if got := forwarded.Scheme(req, []*net.IPNet{proxies}); got != c.scheme {
			t.Errorf("peer %s, X-Forwarded-Proto %q: scheme %s, want %s", c.peer, c.proto, got, c.scheme)
		}
		if got := ctx.RealIP(); got != c.ip {
			t.Errorf("peer %s, X-Forwarded-For %q: address %s, want %s", c.peer, c.xff, got, c.ip)
		}
	}

	// With no trusted proxies configured, nobody's forwarded headers count.
	none := New(Config{MaxBodyBytes: 1 << 20}, Deps{}, slog.New(slog.DiscardHandler))
	req := httptest.NewRequest("GET", "/healthz", nil)
	req.RemoteAddr = "10.1.2.3:5000"
	req.Header.Set("X-Forwarded-Proto", "https")
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	ctx := none.echo.NewContext(req, httptest.NewRecorder())
	if forwarded.Scheme(req, nil) != "http" || ctx.RealIP() != "10.1.2.3" {
		t.Errorf("no trusted proxies: scheme %s, address %s", forwarded.Scheme(req, nil), ctx.RealIP())
	}
}
