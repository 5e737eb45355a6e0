package server

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http/httptest"
	"testing"
)

// TestForwardedHeadersOnlyFromTrustedProxies: X-Forwarded-For changes the caller's address only
// when the peer is a configured trusted proxy. (The scheme and host: internal/forwarded.)
func TestForwardedHeadersOnlyFromTrustedProxies(t *testing.T) {
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	s := New(Config{MaxBodyBytes: 1 << 20, TrustedProxies: []*net.IPNet{proxies}}, Deps{}, slog.New(slog.DiscardHandler))
	for _, c := range []struct {
		peer, proto, xff string
		tls              bool
		ip               string
	}{
		{peer: "203.0.113.7:5000", ip: "203.0.113.7"},
		{peer: "203.0.113.7:5000", proto: "https", xff: "198.51.100.1", ip: "203.0.113.7"},
		{peer: "127.0.0.1:5000", proto: "https", xff: "198.51.100.1", ip: "127.0.0.1"},
		{peer: "10.1.2.3:5000", proto: "https", xff: "198.51.100.1", ip: "198.51.100.1"},
		{peer: "10.1.2.3:5000", proto: "HTTPS, http", ip: "10.1.2.3"},
		{peer: "10.1.2.3:5000", proto: "javascript", ip: "10.1.2.3"},
		{peer: "10.1.2.3:5000", ip: "10.1.2.3"},
		{peer: "203.0.113.7:5000", proto: "http", tls: true, ip: "203.0.113.7"},
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
	if ctx.RealIP() != "10.1.2.3" {
		t.Errorf("no trusted proxies: address %s", ctx.RealIP())
	}
}
