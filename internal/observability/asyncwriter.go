package observability

import (
	"io"
	"sync"
)

// AsyncWriter hands what is written to a goroutine that writes it to the
// underlying writer, so a request never waits on the log's file or pipe.
// Writing the access log line synchronously held the logger's lock through
// the disk stalls that the database's fsyncs cause on the same disk:
// measured in issue #6, it took the login's p99 at half of capacity from
// ~6 ms (access log off) to 12–30 ms.
//
// Writes keep their order and are never dropped: when more than max bytes
// are waiting (the output cannot keep up), Write blocks until there is room.
// Close writes what is left; a crash loses what was still waiting.
type AsyncWriter struct {
	w   io.Writer
	max int

	mu      sync.Mutex
	drained *sync.Cond // the goroutine took the waiting bytes
	buf     []byte     // waiting to be written
	closed  bool

	wake chan struct{} // capacity 1: there is something to write
	done chan struct{} // the goroutine has written everything and ended
}

// NewAsyncWriter returns an AsyncWriter on w letting at most max bytes wait.
func NewAsyncWriter(w io.Writer, max int) *AsyncWriter {
	a := &AsyncWriter{w: w, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
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
	a.buf = append(a.buf, p...)
	select { // under the lock: Close closes wake
	case a.wake <- struct{}{}:
	default: // already woken
	}
	a.mu.Unlock()
	return len(p), nil
}

// Close writes what is waiting and makes later writes synchronous.
func (a *AsyncWriter) Close() error {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.wake)
		a.drained.Broadcast()
	}
	a.mu.Unlock()
	<-a.done
	return nil
}

func (a *AsyncWriter) run() {
	defer close(a.done)
	var out []byte
	for {
		_, open := <-a.wake
		for {
			a.mu.Lock()
			out, a.buf = a.buf, out[:0] // two buffers, swapped: no allocation once grown
			a.drained.Broadcast()
			a.mu.Unlock()
			if len(out) == 0 {
				break
			}
			_, _ = a.w.Write(out) // a log has nowhere to report its own failure
		}
		if !open {
			return
		}
	}
}
