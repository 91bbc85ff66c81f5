package data_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
)

// twoInstances opens one database twice, as two mpauth instances would,
// with data.session_cache_ttl = ttl (nil: the default) and a settable clock
// for the first instance's cache when it has one.
func twoInstances(t *testing.T, driver string, ttl *durationpb.Duration) (a, b *data.Data, clock *fakeClock) {
	t.Helper()
	c := dbtest.Config(t, driver)
	c.SessionCacheTtl = ttl
	box := dbtest.Box(t)
	a, b = dbtest.OpenConfig(t, c, box), dbtest.OpenConfig(t, c, box)
	clock = &fakeClock{t: time.Now()}
	if ttl == nil || ttl.AsDuration() > 0 {
		data.SetSessionCacheClock(a, clock.now)
	}
	return a, b, clock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func checkActive(t *testing.T, repo biz.SessionRepo, want bool, when string) {
	t.Helper()
	s, err := repo.GetForTokenCheck(context.Background(), "s_1")
	if err != nil {
		t.Fatalf("%s: GetForTokenCheck: %v", when, err)
	}
	if s.Active() != want {
		t.Fatalf("%s: active = %v, want %v", when, s.Active(), want)
	}
}

func TestTokenCheckSeesRevocationThroughThisInstanceAtOnce(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			t.Run("revoke", func(t *testing.T) {
				a, _, _ := twoInstances(t, driver, nil)
				repo := newSession(t, a)
				checkActive(t, repo, true, "before logout") // remembered now
				if err := repo.Revoke(ctx, "s_1", "logout", at(1)); err != nil {
					t.Fatal(err)
				}
				checkActive(t, repo, false, "right after logout")
			})
			t.Run("revoke every session of a user in a transaction", func(t *testing.T) {
				a, _, _ := twoInstances(t, driver, nil)
				repo := newSession(t, a)
				checkActive(t, repo, true, "before")
				err := data.NewTransaction(a).InTx(ctx, func(ctx context.Context) error {
					_, err := repo.RevokeUser(ctx, "u_1", biz.RevokeAdmin, at(1))
					// Read outside the transaction before it commits: the
					// still-active row may be remembered, but not past the commit.
					checkActive(t, repo, true, "before the commit")
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				checkActive(t, repo, false, "after the commit")
			})
		})
	}
}

func TestTokenCheckSeesRevocationThroughAnotherInstanceWithinTheTTL(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			a, b, clock := twoInstances(t, driver, durationpb.New(time.Second))
			repoA := newSession(t, a)
			checkActive(t, repoA, true, "before logout")
			if err := data.NewSessionRepo(b).Revoke(context.Background(), "s_1", "logout", at(1)); err != nil {
				t.Fatal(err)
			}
			// Remembered: this is what saves the database round trip.
			checkActive(t, repoA, true, "through instance b, 0.9 s later")
			clock.advance(900 * time.Millisecond)
			checkActive(t, repoA, true, "through instance b, 0.9 s later")
			clock.advance(200 * time.Millisecond)
			checkActive(t, repoA, false, "through instance b, past the TTL")
			// A plain Get never answers from memory.
			if s, err := repoA.Get(context.Background(), "s_1"); err != nil || s.Active() {
				t.Fatalf("Get = %+v, %v; want the revoked session", s, err)
			}
		})
	}
}

func TestSessionCacheTTLZeroReadsTheDatabaseEveryTime(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			a, b, _ := twoInstances(t, driver, durationpb.New(0))
			repoA := newSession(t, a)
			checkActive(t, repoA, true, "before logout")
			if err := data.NewSessionRepo(b).Revoke(context.Background(), "s_1", "logout", at(1)); err != nil {
				t.Fatal(err)
			}
			checkActive(t, repoA, false, "right after logout through instance b")
		})
	}
}
