// Package forwarded reads what a load balancer says of the client (X-Forwarded-Proto,
// X-Forwarded-Host), believed only when the request's peer is a trusted proxy: anyone else could
// otherwise make the server build links (an upload's Location) to a scheme or host of their
// choosing.
package forwarded

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Trusted reports whether the request's peer (r.RemoteAddr) is in one of nets.
func Trusted(r *http.Request, nets []*net.IPNet) bool {
	if len(nets) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, n := range nets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// Scheme is the scheme the client used: https on a TLS connection, or what a trusted proxy says
// in X-Forwarded-Proto; http otherwise.
func Scheme(r *http.Request, nets []*net.IPNet) string {
	if r.TLS != nil {
		return "https"
	}
	if Trusted(r, nets) {
		if p := Proto(r.Header.Get("X-Forwarded-Proto")); p != "" {
			return p
		}
	}
	return "http"
}

// Host is the host (and port) the client asked for: what a trusted proxy says in
// X-Forwarded-Host, else the request's Host.
func Host(r *http.Request, nets []*net.IPNet) string {
	if Trusted(r, nets) {
		if h := HostValue(r.Header.Get("X-Forwarded-Host")); h != "" {
			return h
		}
	}
	return r.Host
}

// Proto reads an X-Forwarded-Proto value as the first proxy set it (a chain of proxies lists one
// scheme each; the first is the client's): "http" or "https", or "" for anything else.
func Proto(v string) string {
	first, _, _ := strings.Cut(v, ",")
	switch p := strings.ToLower(strings.TrimSpace(first)); p {
	case "http", "https":
		return p
	}
	return ""
}

// HostValue reads an X-Forwarded-Host value as the first proxy set it: a host and optional port,
// or "" if it is not one.
func HostValue(v string) string {
	first, _, _ := strings.Cut(v, ",")
	h := strings.TrimSpace(first)
	if h == "" || len(h) > 255 {
		return ""
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-:[]", c) >= 0) {
			return ""
		}
	}
	// And it must read back as a URL's host, with a name.
	if u, err := url.Parse("http://" + h + "/"); err != nil || u.Host != h || u.Hostname() == "" {
		return ""
	}
	return h
}
