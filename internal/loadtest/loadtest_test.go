package loadtest

import (
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
<<<<<<< HEAD
		Push:     Throughput{API: 60, Baseline: 100, Ratio: 0.6},
		Pull:     Throughput{API: 50, Baseline: 100, Ratio: 0.5},
		Upload:   Throughput{API: 90, Baseline: 100, Ratio: 0.9},
		LongPoll: LongPoll{Devices: 1000, Latency: Latency{Count: 10, P99: 99}},
		// Met: 1.2 s for 100,000 records.
		InitialSyncLarge: InitialSync{Records: 100001, APISeconds: 1.2},
		Server:           ServerUsage{PeakRSSMB: 301},
=======
		Push:      Throughput{API: 12000, Baseline: 20000, Ratio: 0.6},
		PushSet:   Throughput{API: 12000, Baseline: 30000, Ratio: 0.4},
		PushSizes: []PushSize{{Tasks: 1000, Size: 100, API: 12000, RowBaseline: 20000, SetBaseline: 30000, RowRatio: 0.6, SetRatio: 0.4}},
		Pull:      Throughput{API: 50, Baseline: 100, Ratio: 0.5},
		Upload:    Throughput{API: 90, Baseline: 100, Ratio: 0.9},
		LongPoll:  LongPoll{Devices: 1000, Latency: Latency{Count: 10, P99: 99}},
		Server:    ServerUsage{PeakRSSMB: 301},
>>>>>>> i13-push
	}
	r.judge(func(string) bool { return true })
	if got := strings.Join(r.Missed(), ","); got != "pull,server_memory" {
		t.Errorf("missed %q, want pull,server_memory", got)
	}
	r.LongPoll.PushErrors = 1
	r.judge(func(p string) bool { return p != "pull" })
	if got := strings.Join(r.Missed(), ","); got != "writers_p99,server_memory" {
		t.Errorf("missed %q, want writers_p99,server_memory (pull not run; a push failed)", got)
	}
	var b bytes.Buffer
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "against rows written in sets") {
		t.Errorf("the table does not show push against the baseline in sets:\n%s", b.String())
	}
	if strings.Contains(b.String(), "pull (") {
		t.Errorf("the table shows the pull, which did not run:\n%s", b.String())
	}
	if !strings.Contains(b.String(), "goals missed: writers_p99, server_memory") {
		t.Errorf("the table does not name the missed goals:\n%s", b.String())
	}
}
