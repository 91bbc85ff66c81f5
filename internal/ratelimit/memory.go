package ratelimit

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// DefaultMaxKeys bounds a Memory store: enough for every address of a busy
// minute, small enough (a few MB) that a flood of addresses cannot exhaust
// memory.
const DefaultMaxKeys = 100_000

// Memory is a Store in this process's memory. It holds at most maxKeys
// windows: expired windows are dropped as time goes by, and when it is full
// the oldest window is evicted (its key starts over: under a flood of new
// keys, a limit may let a few more events through, never fewer).
type Memory struct {
	mu      sync.Mutex
	maxKeys int
	now     func() time.Time
	keys    map[string]*list.Element
	order   *list.List // of *memWindow, oldest first
}

type memWindow struct {
	key     string
	count   int64
	resetAt time.Time
}

// NewMemory returns a Memory store of at most maxKeys keys (<= 0:
// DefaultMaxKeys).
func NewMemory(maxKeys int) *Memory {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Memory{maxKeys: maxKeys, now: time.Now, keys: map[string]*list.Element{}, order: list.New()}
}

// WithClock makes the store read time from now (tests).
func (m *Memory) WithClock(now func() time.Time) *Memory {
	m.now = now
	return m
}

// Len returns how many windows the store holds.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

// Hit implements Store.
func (m *Memory) Hit(_ context.Context, key string, window time.Duration) (int64, time.Duration, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropExpired(now)
	if e, ok := m.keys[key]; ok {
		w := e.Value.(*memWindow)
		if now.Before(w.resetAt) {
			w.count++
			return w.count, w.resetAt.Sub(now), nil
		}
		// Expired but not yet dropped (windows of other lengths before it).
		m.order.Remove(e)
		delete(m.keys, key)
	}
	for len(m.keys) >= m.maxKeys {
		oldest := m.order.Front()
		m.order.Remove(oldest)
		delete(m.keys, oldest.Value.(*memWindow).key)
	}
	w := &memWindow{key: key, count: 1, resetAt: now.Add(window)}
	m.keys[key] = m.order.PushBack(w)
	return 1, window, nil
}

// dropExpired removes expired windows from the front. Windows are in
// creation order, which is expiry order for windows of one length.
func (m *Memory) dropExpired(now time.Time) {
	for e := m.order.Front(); e != nil; e = m.order.Front() {
		w := e.Value.(*memWindow)
		if now.Before(w.resetAt) {
			return
		}
		m.order.Remove(e)
		delete(m.keys, w.key)
	}
}
