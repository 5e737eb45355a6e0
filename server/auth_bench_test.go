package server_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"runtime/metrics"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldsync/fieldsync/account"
	"github.com/fieldsync/fieldsync/internal/app/apptest"
	"github.com/google/uuid"
)

// Login benchmarks. Run:
//
//	go test ./server -run '^$' -bench LoginFlood -benchtime 3x
//
// BenchmarkLoginFlood sends logins at once, with the production argon2id parameters (19 MiB a
// hash), and reports the peak of the process's live heap (peak-heap-MiB) and of the memory it
// holds from the system (peak-held-MiB), above what it held before the logins. "single" is one
// login, the normal peak; "flood" is 200 concurrent logins with the default bound of 4 hashes at
// once; "unbounded" lets every login hash at once, as the server did before the bound.

// memSampler records the peak of live heap and of memory held from the system while it runs.
type memSampler struct {
	stop             chan struct{}
	done             chan struct{}
	peakHeap, peakIn uint64
}

var memSamples = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/total:bytes", "/memory/classes/heap/released:bytes"}

func readMem() (heap, held uint64) {
	s := make([]metrics.Sample, len(memSamples))
	for i, name := range memSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64() - s[2].Value.Uint64()
}

func sampleMemory() *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			heap, held := readMem()
			m.peakHeap, m.peakIn = max(m.peakHeap, heap), max(m.peakIn, held)
			select {
			case <-m.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return m
}

func (m *memSampler) finish() (peakHeap, peakHeld uint64) {
	close(m.stop)
	<-m.done
	return m.peakHeap, m.peakIn
}

func BenchmarkLoginFlood(b *testing.B) {
	for _, c := range []struct {
		name          string
		logins, slots int
	}{
		{"single", 1, account.DefaultHashConcurrency()},
		{"flood-200", 200, account.DefaultHashConcurrency()},
		{"unbounded-200", 200, 200},
	} {
		b.Run(c.name, func(b *testing.B) {
			env := setup(b, func(o *apptest.Setup) {
				o.LoginFailuresPerLogin, o.LoginFailuresPerAddress = 1<<20, 1<<20
				o.LoginConcurrency, o.LoginWait = c.slots, time.Minute
				o.Password = account.DefaultPasswordParams
			})
			login := "flood-" + uuid.NewString()[:8]
			if _, err := env.accounts.CreateUser(context.Background(), account.NewUser{BranchID: env.branchID,
				Role: "rep", Login: login, Name: "Flood", Password: testPassword}); err != nil {
				b.Fatal(err)
			}
			env.srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = c.logins
			var peakHeap, peakHeld uint64
			for b.Loop() {
				debug.FreeOSMemory() // collects, and gives back what the last round held
				baseHeap, baseHeld := readMem()
				m := sampleMemory()
				var refused atomic.Int64
				var wg gosync.WaitGroup
				for i := range c.logins {
					wg.Add(1)
					go func() {
						defer wg.Done()
						r, err := env.send("POST", "/v1/auth/login", "", loginBody(login, fmt.Sprint("guess ", i), uuid.New()))
						if err != nil || r.status != http.StatusUnauthorized {
							refused.Add(1)
						}
					}()
				}
				wg.Wait()
				heap, held := m.finish()
				if n := refused.Load(); n > 0 {
					b.Fatalf("%d logins were not checked", n)
				}
				peakHeap, peakHeld = max(peakHeap, heap-min(heap, baseHeap)), max(peakHeld, held-min(held, baseHeld))
			}
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(peakHeld)/(1<<20), "peak-held-MiB")
		})
	}
}
