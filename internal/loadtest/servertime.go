package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// pullRoute is the pull's route pattern, as the server's metrics label it.
const pullRoute = "/v1/sync/pull"

// serverSeconds returns the time the server has spent serving requests of method and route
// since it started: the sum of its request-duration histogram (GET /metrics,
// fieldsync_http_request_duration_seconds). The difference of two readings is the server's time
// for the requests between them, without the client's (a page's decoding, the loop's).
func (r *run) serverSeconds(ctx context.Context, method, route string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.t.BaseURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := r.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the server's metrics: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read the server's metrics: %s", res.Status)
	}
	return metricSum(bufio.NewScanner(res.Body), method, route)
}

// metricSum finds the request-duration sum of method and route in a Prometheus text exposition;
// 0 when the server has served no such request yet.
func metricSum(sc *bufio.Scanner, method, route string) (float64, error) {
	prefix := fmt.Sprintf(`fieldsync_http_request_duration_seconds_sum{method=%q,route=%q} `, method, route)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, sc.Err()
}
