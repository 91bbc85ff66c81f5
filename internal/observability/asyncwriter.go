package observability

import (
	"io"
	"sync"
	"time"
)

// AsyncWriter hands what is written to a goroutine that writes it to the
// underlying writer, so a request never waits on the log's file or pipe.
// Writing the access log line synchronously held the logger's lock through
// the disk stalls that the database's fsyncs cause on the same disk:
// measured in issue #6, it took the login's p99 at half of capacity from
// ~6 ms (access log off) to 12–30 ms.
//
// The goroutine lets lines gather for up to linger after the first one
// arrives and writes them in one call: woken for every line, it cost each
// request a goroutine hand-off and a write system call (issue #6's
// profiles). Lines keep the time they were logged at; they reach the output
// at most linger later, or at once when half of max is waiting.
//
// Writes keep their order and are never dropped: when more than max bytes
// are waiting (the output cannot keep up), Write blocks until there is room.
// Close writes what is left; a crash loses what was still waiting.
type AsyncWriter struct {
	w      io.Writer
	max    int
	linger time.Duration

	mu      sync.Mutex
	drained *sync.Cond // the goroutine took the waiting bytes
	buf     []byte     // waiting to be written
	closed  bool

	wake  chan struct{} // capacity 1: bytes began waiting
	hurry chan struct{} // capacity 1: half of max is waiting; write without lingering
	done  chan struct{} // the goroutine has written everything and ended
}

// NewAsyncWriter returns an AsyncWriter on w letting at most max bytes wait,
// each for at most linger.
func NewAsyncWriter(w io.Writer, max int, linger time.Duration) *AsyncWriter {
	a := &AsyncWriter{
		w: w, max: max, linger: linger,
		wake: make(chan struct{}, 1), hurry: make(chan struct{}, 1), done: make(chan struct{}),
	}
	a.drained = sync.NewCond(&a.mu)
	go a.run()
	return a
}

// Write queues a copy of p. After Close it writes p itself.
func (a *AsyncWriter) Write(p []byte) (int, error) {
	a.mu.Lock()
	for len(a.buf) > 0 && len(a.buf)+len(p) > a.max && !a.closed {
		a.drained.Wait()
	}
	if a.closed {
		a.mu.Unlock()
		<-a.done
		return a.w.Write(p)
	}
	first := len(a.buf) == 0
	a.buf = append(a.buf, p...)
	// Under the lock: Close closes the channels.
	if first {
		signal(a.wake)
	}
	if len(a.buf) >= a.max/2 {
		signal(a.hurry)
	}
	a.mu.Unlock()
	return len(p), nil
}

// signal leaves a token in c (capacity 1) unless one is there.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Close writes what is waiting and makes later writes synchronous.
func (a *AsyncWriter) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.wake)
		close(a.hurry)
		a.drained.Broadcast()
	}
	a.mu.Unlock()
	<-a.done
	return nil
}

func (a *AsyncWriter) run() {
	defer close(a.done)
	linger := time.NewTimer(a.linger)
	linger.Stop()
	var out []byte
	for {
		// A token means bytes began waiting since the last swap (or a
		// stale one: the swap then finds nothing and nothing is written).
		_, open := <-a.wake
		if open && a.linger > 0 {
			linger.Reset(a.linger)
			select {
			case <-linger.C:
			case <-a.hurry:
				linger.Stop()
			}
		}
		a.mu.Lock()
		out, a.buf = a.buf, out[:0] // two buffers, swapped: no allocation once grown
		a.drained.Broadcast()
		a.mu.Unlock()
		if len(out) > 0 {
			_, _ = a.w.Write(out) // a log has nowhere to report its own failure
		}
		if !open {
			return
		}
	}
}
