package media

import (
	"context"
	"fmt"
	gosync "sync"
	"time"

	"github.com/fieldsync/fieldsync"
)

// Part buffers (partSize each) are few by design: the memory of uploads in flight has a ceiling.
// A request waits for one only so long (BufferWait), then is answered 503 server_busy.

var partBuffers = gosync.Pool{New: func() any { b := make([]byte, partSize); return &b }}

// busyRetryAfter is what a client turned away for lack of a buffer is told to wait.
const busyRetryAfter = 5 * time.Second

// ErrServerBusy answers a request that found no part buffer within BufferWait: every buffer is
// held by other uploads in progress. It is load, not a fault: it is not worth a log line.
var ErrServerBusy = &fieldsync.Error{Kind: fieldsync.EUNAVAILABLE, Code: "server_busy",
	Message: "The server is receiving as many uploads as it can; nothing was lost. Retry shortly.", RetryAfter: busyRetryAfter}

// acquireBuffer takes a part buffer, waiting at most BufferWait for one. The returned func gives
// it back.
func (s *Service) acquireBuffer(ctx context.Context) (*[]byte, func(), error) {
	wctx, cancel := context.WithTimeout(ctx, s.opts.BufferWait)
	defer cancel()
	if err := s.buffers.Acquire(wctx, 1); err != nil {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("wait for a part buffer: %w", ctx.Err())
		}
		return nil, nil, ErrServerBusy
	}
	s.bufferedParts.Add(1)
	bufp := partBuffers.Get().(*[]byte)
	return bufp, func() {
		partBuffers.Put(bufp)
		s.bufferedParts.Add(-1)
		s.buffers.Release(1)
	}, nil
}

// tryBuffer takes a part buffer if one is free now, without waiting: a second buffer for a
// request that already holds one, so that it may read its next part while storing the last.
func (s *Service) tryBuffer() (*[]byte, func(), bool) {
	if !s.buffers.TryAcquire(1) {
		return nil, nil, false
	}
	s.bufferedParts.Add(1)
	bufp := partBuffers.Get().(*[]byte)
	return bufp, func() {
		partBuffers.Put(bufp)
		s.bufferedParts.Add(-1)
		s.buffers.Release(1)
	}, true
}
