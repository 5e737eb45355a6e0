package loadtest

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 200; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := summarize(ds)
	want := Latency{Count: 200, P50: 100, P99: 198, Max: 200}
	if got != want {
		t.Errorf("summarize: %+v, want %+v", got, want)
	}
	if got := summarize(nil); got != (Latency{}) {
		t.Errorf("summarize of nothing: %+v", got)
	}
	if got := median([]time.Duration{3, 1, 2, 4}); got != 2 {
		t.Errorf("median: %v", got)
	}
}

func TestJudge(t *testing.T) {
	r := &Report{
		Push:      Throughput{API: 12000, Baseline: 20000, Ratio: 0.6},
		PushSet:   Throughput{API: 12000, Baseline: 40000, Ratio: 0.3},
		PushSizes: []PushSize{{Tasks: 1000, Size: 100, API: 12000, RowBaseline: 20000, SetBaseline: 40000, RowRatio: 0.6, SetRatio: 0.3}},
		Pull:      Throughput{API: 50, Baseline: 100, Ratio: 0.5},
		// Met: 1.2 s of server time for 100,000 records (the client's loop is not held to it).
		InitialSyncLarge: InitialSync{Records: 100_000, APISeconds: 1.9, ServerSeconds: 1.2, BaseSeconds: 0.5},
		Upload:           Throughput{API: 90, Baseline: 100, Ratio: 0.9},
		UploadTusd:       Throughput{API: 90, Baseline: 80, Ratio: 1.125},
		LongPoll: LongPoll{Devices: 5000, Latency: Latency{Count: 10, P99: 49}, Wake: Latency{Count: 10, P99: 19},
			Memory: WaitMemory{PerDeviceKB: 25}, SignIn: Usage{PeakRSSMB: 100}, Server: Usage{PeakRSSMB: 200}},
		Server: ServerUsage{PeakRSSMB: 301},
	}
	r.judge(func(string) bool { return true })
	if got := strings.Join(r.Missed(), ","); got != "pull,server_memory" {
		t.Errorf("missed %q, want pull,server_memory", got)
	}
	// A push failed; the sign-in was the peak; the set-based baseline was not measured.
	r.LongPoll.PushErrors = 1
	r.LongPoll.SignIn.PeakRSSMB = 200
	r.PushSet = Throughput{}
	r.judge(func(p string) bool { return p != "pull" })
	if got := strings.Join(r.Missed(), ","); got != "push_set_ratio,writers_p99,sign_in_peak,server_memory" {
		t.Errorf("missed %q, want push_set_ratio,writers_p99,sign_in_peak,server_memory (pull not run)", got)
	}
	if g := goal(r, "push_set_ratio"); g.Measured != "not measured" {
		t.Errorf("a goal whose figure is absent reads %q, want not measured", g.Measured)
	}
	// Fewer devices than the goal's: the figures show, the goal is not met.
	r.LongPoll.Devices = 1000
	r.judge(func(string) bool { return true })
	if g := goal(r, "wake_p99"); g.Met {
		t.Errorf("wake_p99 met with %d devices, want missed below %d", r.LongPoll.Devices, GoalDevices)
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "against rows written in sets") {
		t.Errorf("the table does not show push against the baseline in sets:\n%s", b.String())
	}
	r.judge(func(p string) bool { return p != "pull" })
	b.Reset()
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "pull (") {
		t.Errorf("the table shows the pull, which did not run:\n%s", b.String())
	}
	for _, g := range goalSpecs {
		if !strings.Contains(b.String(), "\n"+g.name+" ") {
			t.Errorf("the table has no goal %s:\n%s", g.name, b.String())
		}
	}
	if !strings.Contains(b.String(), "goals missed: push_set_ratio, writers_p99, wake_p99, waiting_device_kb, sign_in_peak, server_memory") {
		t.Errorf("the table does not name the missed goals:\n%s", b.String())
	}
}

func TestMetricSum(t *testing.T) {
	text := `# HELP fieldsync_http_request_duration_seconds Time to serve an HTTP request, by method and route pattern.
fieldsync_http_request_duration_seconds_bucket{method="GET",route="/v1/sync/pull",le="0.001"} 3
fieldsync_http_request_duration_seconds_sum{method="POST",route="/v1/sync/push"} 9.5
fieldsync_http_request_duration_seconds_sum{method="GET",route="/v1/sync/pull"} 1.25
fieldsync_http_request_duration_seconds_count{method="GET",route="/v1/sync/pull"} 7
`
	got, err := metricSum(bufio.NewScanner(strings.NewReader(text)), "GET", "/v1/sync/pull")
	if err != nil || got != 1.25 {
		t.Fatalf("metricSum = %v, %v; want 1.25", got, err)
	}
	if got, err := metricSum(bufio.NewScanner(strings.NewReader(text)), "GET", "/v1/tasks"); err != nil || got != 0 {
		t.Fatalf("metricSum of a route never served = %v, %v; want 0", got, err)
	}
}
