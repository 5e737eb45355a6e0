package forwarded

import (
	"crypto/tls"
	"net"
	"net/http/httptest"
	"testing"
)

// TestOnlyFromTrustedProxies: X-Forwarded-Proto and X-Forwarded-Host change the scheme and host
// only when the peer is a trusted proxy, and only to a scheme or host they may be.
func TestOnlyFromTrustedProxies(t *testing.T) {
	_, proxies, _ := net.ParseCIDR("10.0.0.0/8")
	nets := []*net.IPNet{proxies}
	for _, c := range []struct {
		peer, proto, host string
		tls               bool
		nets              []*net.IPNet
		scheme, wantHost  string
	}{
		{peer: "203.0.113.7:5000", nets: nets, scheme: "http", wantHost: "api.example"},
		{peer: "203.0.113.7:5000", proto: "https", host: "evil.example", nets: nets, scheme: "http", wantHost: "api.example"},
		{peer: "127.0.0.1:5000", proto: "https", nets: nets, scheme: "http", wantHost: "api.example"},
		{peer: "10.1.2.3:5000", proto: "https", host: "sync.example.com", nets: nets, scheme: "https", wantHost: "sync.example.com"},
		{peer: "10.1.2.3:5000", proto: "HTTPS, http", host: "a.example:8443, b", nets: nets, scheme: "https", wantHost: "a.example:8443"},
		{peer: "10.1.2.3:5000", proto: "javascript", host: "evil.example/path", nets: nets, scheme: "http", wantHost: "api.example"},
		{peer: "10.1.2.3:5000", nets: nets, scheme: "http", wantHost: "api.example"},
		{peer: "10.1.2.3", proto: "https", nets: nets, scheme: "https", wantHost: "api.example"}, // no port
		{peer: "203.0.113.7:5000", proto: "http", tls: true, nets: nets, scheme: "https", wantHost: "api.example"},
		{peer: "10.1.2.3:5000", proto: "https", host: "sync.example.com", scheme: "http", wantHost: "api.example"}, // no proxies
	} {
		r := httptest.NewRequest("GET", "http://api.example/v1/uploads", nil)
		r.RemoteAddr = c.peer
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if c.host != "" {
			r.Header.Set("X-Forwarded-Host", c.host)
		}
		if c.tls {
			r.TLS = &tls.ConnectionState{}
		}
		if got := Scheme(r, c.nets); got != c.scheme {
			t.Errorf("peer %s, X-Forwarded-Proto %q: scheme %s, want %s", c.peer, c.proto, got, c.scheme)
		}
		if got := Host(r, c.nets); got != c.wantHost {
			t.Errorf("peer %s, X-Forwarded-Host %q: host %s, want %s", c.peer, c.host, got, c.wantHost)
		}
	}
}
