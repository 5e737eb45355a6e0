package sim

import (
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	gosync "sync"

	"github.com/fieldsync/fieldsync/internal/client"
)

// ErrOffline is what a request made while the device is offline fails with.
var ErrOffline = errors.New("sim: the device is offline")

// ErrDropped is what a request fails with when the network lost its answer: the server handled
// it, the device never heard back.
var ErrDropped = errors.New("sim: the answer was lost on the way back")

// errCut is what an upload body cut midway fails with.
var errCut = errors.New("sim: the connection dropped while sending")

// Network is one device's connection: an http.RoundTripper that can be switched off (offline)
// and made flaky. A flaky network loses a fraction of the answers after the server handled the
// request, which is what makes a client retry something that already happened (a push, a chunk
// of an upload, a refresh), and cuts a fraction of upload bodies midway.
type Network struct {
	base http.RoundTripper

	mu     gosync.Mutex
	rng    *rand.Rand
	online bool
	drop   float64
	cut    float64
}

// NewNetwork returns an online, reliable network over base (http.DefaultTransport when nil),
// whose losses are drawn from seed.
func NewNetwork(base http.RoundTripper, seed uint64) *Network {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Network{base: base, rng: rand.New(rand.NewPCG(seed, 0x6e6574)), online: true}
}

// SetOnline connects or disconnects the device.
func (n *Network) SetOnline(online bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.online = online
}

// Online reports whether the device is connected.
func (n *Network) Online() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.online
}

// SetFlaky sets the fraction of answers lost after the server handled the request, and the
// fraction of upload bodies cut midway. Zero for both is a reliable network.
func (n *Network) SetFlaky(drop, cut float64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.drop, n.cut = drop, cut
}

// draw decides, under the lock, whether this request is cut and whether its answer is dropped.
func (n *Network) draw(upload bool) (online, cut, drop bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	cut = upload && n.cut > 0 && n.rng.Float64() < n.cut
	drop = n.drop > 0 && n.rng.Float64() < n.drop
	return n.online, cut, drop
}

// RoundTrip implements http.RoundTripper.
func (n *Network) RoundTrip(req *http.Request) (*http.Response, error) {
	upload := req.Method == http.MethodPatch && req.Body != nil && req.ContentLength > 1
	online, cut, drop := n.draw(upload)
	if !online {
		closeBody(req)
		return nil, ErrOffline
	}
	if cut {
		// Send half the body, then fail as a dropped connection does. The request is cloned: the
		// caller's stays as it was.
		req = req.Clone(req.Context())
		req.Body = &cutBody{r: req.Body, left: req.ContentLength / 2}
	}
	res, err := n.base.RoundTrip(req)
	if err != nil || !drop {
		return res, err
	}
	// Let the server finish (read the whole answer, as a pull streams it), then lose it. The
	// answer to a push is kept in the error, for the device to check the replay's against.
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/v1/sync/push") && res.StatusCode == http.StatusOK {
		var out struct {
			Results []client.Result `json:"results"`
		}
		if json.Unmarshal(body, &out) == nil {
			return nil, &LostPush{Results: out.Results}
		}
	}
	return nil, ErrDropped
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// cutBody reads left bytes of r, then fails.
type cutBody struct {
	r    io.ReadCloser
	left int64
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (c *cutBody) Close() error { return c.r.Close() }
