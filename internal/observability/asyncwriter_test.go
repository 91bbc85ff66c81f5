package observability_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/observability"
)

// lockedBuffer is an output that can be held up (like a file on a disk busy
// with the database's fsyncs) until released.
type lockedBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	gate    chan struct{} // closed: writes go through
	entered chan struct{} // a write has begun (and may be held up)
}

func newLockedBuffer(open bool) *lockedBuffer {
	b := &lockedBuffer{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	if open {
		close(b.gate)
	}
	return b
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.gate
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// written is what reached the buffer, and in how many writes.
func (b *lockedBuffer) written() (string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String(), b.writes
}

// waitFor polls until the buffer holds want, failing after 10 s.
func (b *lockedBuffer) waitFor(t *testing.T, want string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if got, writes := b.written(); got == want {
			return writes
		}
	}
	got, _ := b.written()
	t.Fatalf("output %q, want %q", got, want)
	return 0
}

func TestAsyncWriterKeepsEveryLineInOrder(t *testing.T) {
	out := newLockedBuffer(true)
	w := observability.NewAsyncWriter(out, 512, time.Millisecond) // small: writers often wait for room
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				fmt.Fprintf(w, "g%d line %d\n", g, i)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "after close\n")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*500+1 || lines[len(lines)-1] != "after close" {
		t.Fatalf("%d lines, last %q; want %d, the last written after Close", len(lines), lines[len(lines)-1], 8*500+1)
	}
	next := map[int]int{}
	for _, l := range lines[:len(lines)-1] {
		var g, i int
		if _, err := fmt.Sscanf(l, "g%d line %d", &g, &i); err != nil {
			t.Fatalf("torn line %q", l)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
}

func TestAsyncWriterDoesNotWaitForAStalledOutputUntilFull(t *testing.T) {
	out := newLockedBuffer(false) // stalled
	w := observability.NewAsyncWriter(out, 100, 0)
	line := []byte(strings.Repeat("x", 39) + "\n")
	// The goroutine takes the first line and stalls writing it; two more
	// lines (80 bytes) wait without blocking their writers.
	if _, err := w.Write(line); err != nil {
		t.Fatal(err)
	}
	<-out.entered
	for i := 1; i < 3; i++ {
		done := make(chan struct{})
		go func() { _, _ = w.Write(line); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("write %d blocked on a stalled output with room left", i)
		}
	}
	full := make(chan struct{})
	go func() { _, _ = w.Write(line); close(full) }() // 120 bytes would wait: blocks
	select {
	case <-full:
		t.Fatal("a write went through with more than max bytes waiting")
	case <-time.After(50 * time.Millisecond):
	}
	close(out.gate)
	<-full
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != strings.Repeat(string(line), 4) {
		t.Fatalf("output %q, want the four lines", got)
	}
}

func TestAsyncWriterWritesTheLinesOfOneLingerInOneWrite(t *testing.T) {
	tests := []struct {
		name   string
		linger time.Duration
		lines  []string
		flush  func(w *observability.AsyncWriter) // makes the lines reach the output
	}{
		{
			name: "after the linger", linger: 200 * time.Millisecond,
			lines: []string{"a\n", "b\n", "c\n"},
			flush: func(*observability.AsyncWriter) {},
		},
		{
			name: "on close", linger: time.Hour,
			lines: []string{"a\n", "b\n", "c\n"},
			flush: func(w *observability.AsyncWriter) { _ = w.Close() },
		},
		{
			name: "when half of max waits", linger: time.Hour,
			lines: []string{strings.Repeat("x", 29) + "\n", strings.Repeat("y", 29) + "\n"}, // 60 of max 100
			flush: func(*observability.AsyncWriter) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := newLockedBuffer(true)
			w := observability.NewAsyncWriter(out, 100, tt.linger)
			defer w.Close()
			for _, l := range tt.lines {
				if _, err := w.Write([]byte(l)); err != nil {
					t.Fatal(err)
				}
			}
			tt.flush(w)
			if writes := out.waitFor(t, strings.Join(tt.lines, "")); writes != 1 {
				t.Fatalf("%d writes, want the lines in one", writes)
			}
		})
	}
}

func TestAsyncWriterHoldsLinesForTheLinger(t *testing.T) {
	out := newLockedBuffer(true)
	w := observability.NewAsyncWriter(out, 100, time.Hour)
	defer w.Close()
	if _, err := w.Write([]byte("held\n")); err != nil {
		t.Fatal(err)
	}
	// Woken for every line, the goroutine wrote it within microseconds.
	time.Sleep(50 * time.Millisecond)
	if got, _ := out.written(); got != "" {
		t.Fatalf("output %q before the linger ended", got)
	}
}
