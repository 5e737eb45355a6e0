package loadtest

import (
	"os"
	gosync "sync"
	"time"
)

// procStat is what the server process has used so far.
type procStat struct {
	CPU     time.Duration // user and system time
	RSS     int64         // resident set now, bytes
	PeakRSS int64         // the most it has been resident (VmHWM), bytes
}

// sampler follows the server process: its CPU time at the boundaries of each phase and the peak
// of its resident memory within each, sampled every 50 ms (and the kernel's own high-water mark
// over the process's life, which no sampling can miss).
type sampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}

	mu        gosync.Mutex
	last      procStat
	phasePeak int64
	err       error
}

func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *sampler) sample() procStat {
	st, err := readProc(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.err == nil {
			s.err = err
		}
		return s.last
	}
	s.last = st
	s.phasePeak = max(s.phasePeak, st.RSS)
	return st
}

// phaseStart is where a phase began.
type phaseStart struct {
	cpu     time.Duration // the server's
	self    time.Duration // this process's (the load generators')
	machine time.Duration // every process's
	at      time.Time
}

// otherCPU reads this process's CPU time and the machine's.
func otherCPU() (self, machine time.Duration) {
	if st, err := readProc(os.Getpid()); err == nil {
		self = st.CPU
	}
	machine, _ = readMachineCPU()
	return self, machine
}

// begin starts a phase: its CPU time counts from here and its peak memory starts afresh.
func (s *sampler) begin() phaseStart {
	st := s.sample()
	s.mu.Lock()
	s.phasePeak = st.RSS
	s.mu.Unlock()
	self, machine := otherCPU()
	return phaseStart{cpu: st.CPU, self: self, machine: machine, at: time.Now()}
}

// end returns what the server used since p.
func (s *sampler) end(p phaseStart) Usage {
	st := s.sample()
	self, machine := otherCPU()
	s.mu.Lock()
	defer s.mu.Unlock()
	wall := time.Since(p.at).Seconds()
	cpu := (st.CPU - p.cpu).Seconds()
	return Usage{CPUSeconds: round(cpu, 2), CPUCores: round(cpu/wall, 2),
		BenchCores: round((self-p.self).Seconds()/wall, 2), MachineCores: round((machine-p.machine).Seconds()/wall, 2),
		PeakRSSMB: mb(s.phasePeak), WallSeconds: round(wall, 2)}
}

// close stops sampling and returns the last reading and the first error met, if any.
func (s *sampler) close() (procStat, error) {
	close(s.stop)
	<-s.done
	st := s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return st, s.err
}

func mb(bytes int64) float64 { return round(float64(bytes)/1e6, 1) }
