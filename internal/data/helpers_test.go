package data_test

import (
	"context"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
)

// eachDriver runs fn as a subtest on a fresh migrated database of every
// driver in dbtest.Drivers().
func eachDriver(t *testing.T, fn func(t *testing.T, d *data.Data)) {
	t.Helper()
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			fn(t, dbtest.Open(t, driver))
		})
	}
}

// at is a fixed instant with microsecond precision (what DATETIME(6) keeps).
func at(sec int) time.Time {
	return time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC).Add(time.Duration(sec) * time.Second)
}

func mustUser(t *testing.T, repo biz.AccountRepo, id string) *biz.User {
	t.Helper()
	u, err := repo.CreateUser(context.Background(), id)
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", id, err)
	}
	return u
}

func mustIdentity(t *testing.T, repo biz.AccountRepo, in *biz.Identity) *biz.Identity {
	t.Helper()
	out, err := repo.CreateIdentity(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateIdentity(%+v): %v", in, err)
	}
	return out
}

// sessionKeyOf reads the session_key of the user's identity openID.
func sessionKeyOf(t *testing.T, repo biz.AccountRepo, userID, openID string) string {
	t.Helper()
	list, err := repo.ListIdentities(context.Background(), userID)
	if err != nil {
		t.Fatalf("ListIdentities(%s): %v", userID, err)
	}
	for _, i := range list {
		if i.OpenID == openID {
			return i.SessionKey
		}
	}
	t.Fatalf("%s has no identity %s", userID, openID)
	return ""
}
