package data

import (
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
)

// A read that began before a revocation (and may have seen the session
// still active) is not remembered past it.
func TestSessionCacheDropsAReadThatRacedARevocation(t *testing.T) {
	c := newSessionCache(time.Minute)
	s := &biz.Session{ID: "s_1", UserID: "u_1"}

	got, epoch := c.get("s_1")
	if got != nil {
		t.Fatalf("empty cache answered %+v", got)
	}
	c.invalidate() // a revocation commits while the read is in flight
	c.put(s, epoch)
	if got, _ := c.get("s_1"); got != nil {
		t.Fatalf("a read older than the revocation was remembered: %+v", got)
	}

	_, epoch = c.get("s_1")
	c.put(s, epoch)
	if got, _ := c.get("s_1"); got == nil || got.UserID != "u_1" {
		t.Fatalf("get after put = %+v, want s_1 of u_1", got)
	}
	c.invalidate()
	if got, _ := c.get("s_1"); got != nil {
		t.Fatalf("remembered past a revocation: %+v", got)
	}
}

func TestSessionCacheIsOffWithoutAPositiveTTL(t *testing.T) {
	for _, ttl := range []time.Duration{0, -time.Second} {
		if c := newSessionCache(ttl); c != nil {
			t.Errorf("newSessionCache(%v) = %+v, want nil (off)", ttl, c)
		}
	}
}
