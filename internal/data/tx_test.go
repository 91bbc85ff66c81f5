package data_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/ent/auditevent"
)

var errBoom = errors.New("boom")

// writeAccount creates user id with one identity and a unionid through ctx.
func writeAccount(ctx context.Context, repo biz.AccountRepo, id string) error {
	if _, err := repo.CreateUser(ctx, id); err != nil {
		return err
	}
	if _, err := repo.CreateIdentity(ctx, &biz.Identity{UserID: id, Platform: "wechat", AppID: "wx-a", OpenID: "o-" + id, LastLoginAt: at(0)}); err != nil {
		return err
	}
	return repo.BindUnion(ctx, "wechat", "scope-a", "un-"+id, id)
}

// assertAccount checks whether writeAccount's rows for id are visible.
func assertAccount(t *testing.T, repo biz.AccountRepo, id string, wantVisible bool) {
	t.Helper()
	ctx := context.Background()
	_, errU := repo.GetUser(ctx, id)
	_, errI := repo.FindIdentity(ctx, "wechat", "wx-a", "o-"+id)
	_, errB := repo.FindUnionOwner(ctx, "wechat", "scope-a", "un-"+id)
	for what, err := range map[string]error{"user": errU, "identity": errI, "union": errB} {
		switch {
		case wantVisible && err != nil:
			t.Errorf("%s of %s not visible: %v", what, id, err)
		case !wantVisible && !errors.Is(err, biz.ErrNotFound):
			t.Errorf("%s of %s: err = %v, want biz.ErrNotFound (rolled back)", what, id, err)
		}
	}
}

func TestInTxErrorFromFnRollsBackEveryWrite(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		repo := data.NewAccountRepo(d)
		// No t.Fatal inside fn: it would leave the transaction open.
		var writeErr error
		err := data.NewTransaction(d).InTx(context.Background(), func(ctx context.Context) error {
			if writeErr = writeAccount(ctx, repo, "u_rolled_back"); writeErr != nil {
				return writeErr
			}
			// The transaction sees its own writes.
			if _, err := repo.FindIdentity(ctx, "wechat", "wx-a", "o-u_rolled_back"); err != nil {
				t.Errorf("inside the transaction FindIdentity: %v", err)
			}
			return errBoom
		})
		if writeErr != nil {
			t.Fatalf("writes in the transaction: %v", writeErr)
		}
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx err = %v, want fn's error", err)
		}
		assertAccount(t, repo, "u_rolled_back", false)
	})
}

func TestInTxCommitsWhenFnSucceeds(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		repo := data.NewAccountRepo(d)
		err := data.NewTransaction(d).InTx(context.Background(), func(ctx context.Context) error {
			if err := writeAccount(ctx, repo, "u_committed"); err != nil {
				return err
			}
			// Not visible outside the transaction before it commits.
			if _, err := repo.GetUser(context.Background(), "u_committed"); !errors.Is(err, biz.ErrNotFound) {
				t.Errorf("uncommitted user visible outside the transaction: err = %v", err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
		assertAccount(t, repo, "u_committed", true)
	})
}

func TestNestedInTxJoinsTheOuterTransaction(t *testing.T) {
	cases := []struct {
		name        string
		outerErr    error
		wantVisible bool
	}{
		{"outer failure rolls back the inner writes", errBoom, false},
		{"outer success commits the inner writes", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			eachDriver(t, func(t *testing.T, d *data.Data) {
				repo := data.NewAccountRepo(d)
				tx := data.NewTransaction(d)
				var innerErr error
				err := tx.InTx(context.Background(), func(ctx context.Context) error {
					if innerErr = tx.InTx(ctx, func(ctx context.Context) error {
						return writeAccount(ctx, repo, "u_nested")
					}); innerErr != nil {
						return innerErr
					}
					// The inner one did not commit on its own.
					if _, err := repo.GetUser(context.Background(), "u_nested"); !errors.Is(err, biz.ErrNotFound) {
						t.Errorf("inner InTx committed on its own: user visible outside, err = %v", err)
					}
					return c.outerErr
				})
				if innerErr != nil {
					t.Fatalf("inner InTx: %v", innerErr)
				}
				if !errors.Is(err, c.outerErr) {
					t.Fatalf("outer InTx err = %v, want %v", err, c.outerErr)
				}
				assertAccount(t, repo, "u_nested", c.wantVisible)
			})
		})
	}
}

func TestInTxReturnsTheRepositoryErrorThatFailedFn(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		repo := data.NewAccountRepo(d)
		mustUser(t, repo, "u_taken")
		err := data.NewTransaction(d).InTx(context.Background(), func(ctx context.Context) error {
			if _, err := repo.CreateUser(ctx, "u_fresh"); err != nil {
				return err
			}
			_, err := repo.CreateUser(ctx, "u_taken")
			return err
		})
		if !errors.Is(err, biz.ErrConcurrentUpdate) {
			t.Fatalf("InTx err = %v, want biz.ErrConcurrentUpdate", err)
		}
		if _, err := repo.GetUser(context.Background(), "u_fresh"); !errors.Is(err, biz.ErrNotFound) {
			t.Fatalf("u_fresh survived the rollback: err = %v", err)
		}
	})
}

func TestAuditRecordPersistsTheEvent(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		e := biz.AuditEvent{
			Actor: "system", Action: biz.AuditRefreshTokenReuse, Subject: "u_1",
			Reason:  "a rotated refresh token was presented again",
			Details: map[string]any{"session_id": "s_1", "n": float64(2)},
			At:      at(0),
		}
		if err := data.NewAuditRepo(d).Record(ctx, e); err != nil {
			t.Fatalf("Record: %v", err)
		}
		rows, err := data.EntClient(d).AuditEvent.Query().Where(auditevent.Action(biz.AuditRefreshTokenReuse)).All(ctx)
		if err != nil {
			t.Fatalf("reading audit events: %v", err)
		}
		if len(rows) != 1 {
			t.Fatalf("%d audit events stored, want 1", len(rows))
		}
		got := rows[0]
		if got.Actor != e.Actor || got.Subject != e.Subject || got.Reason != e.Reason || !got.CreatedAt.Equal(e.At) {
			t.Errorf("stored event = %+v, want %+v", got, e)
		}
		if got.Details["session_id"] != "s_1" || got.Details["n"] != float64(2) || len(got.Details) != 2 {
			t.Errorf("stored details = %v, want %v", got.Details, e.Details)
		}
	})
}

func TestAuditRecordWithoutTimeUsesNow(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		if err := data.NewAuditRepo(d).Record(ctx, biz.AuditEvent{Actor: "system", Action: biz.AuditIdentityConflict}); err != nil {
			t.Fatalf("Record: %v", err)
		}
		got, err := data.EntClient(d).AuditEvent.Query().Only(ctx)
		if err != nil {
			t.Fatalf("reading the audit event: %v", err)
		}
		if got.CreatedAt.IsZero() || got.CreatedAt.Year() < 2024 {
			t.Fatalf("CreatedAt = %v, want the current time", got.CreatedAt)
		}
	})
}

func TestAuditRecordInARolledBackTransactionIsDiscarded(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		audit := data.NewAuditRepo(d)
		var recordErr error
		err := data.NewTransaction(d).InTx(context.Background(), func(ctx context.Context) error {
			if recordErr = audit.Record(ctx, biz.AuditEvent{Actor: "system", Action: biz.AuditIdentityConflict, At: at(0)}); recordErr != nil {
				return recordErr
			}
			return errBoom
		})
		if recordErr != nil {
			t.Fatalf("Record: %v", recordErr)
		}
		if !errors.Is(err, errBoom) {
			t.Fatalf("InTx err = %v, want fn's error", err)
		}
		n, err := data.EntClient(d).AuditEvent.Query().Count(context.Background())
		if err != nil || n != 0 {
			t.Fatalf("audit events after rollback = %d, %v; want 0", n, err)
		}
	})
}

func TestClosedDatabaseIsStorageUnavailable(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		accounts, sessions := data.NewAccountRepo(d), data.NewSessionRepo(d)
		if err := d.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		calls := map[string]func() error{
			"GetUser":    func() error { _, err := accounts.GetUser(ctx, "u_1"); return err },
			"CreateUser": func() error { _, err := accounts.CreateUser(ctx, "u_1"); return err },
			"FindIdentity": func() error {
				_, err := accounts.FindIdentity(ctx, "wechat", "wx-a", "o")
				return err
			},
			"Session.Get": func() error { _, err := sessions.Get(ctx, "s_1"); return err },
			"InTx": func() error {
				return data.NewTransaction(d).InTx(ctx, func(context.Context) error { return nil })
			},
		}
		for name, call := range calls {
			err := call()
			if !errors.Is(err, biz.ErrStorageUnavailable) {
				t.Errorf("%s on a closed database: err = %v, want biz.ErrStorageUnavailable", name, err)
			}
			if errors.Is(err, biz.ErrNotFound) || errors.Is(err, biz.ErrConcurrentUpdate) {
				t.Errorf("%s on a closed database: err = %v also matches ErrNotFound/ErrConcurrentUpdate", name, err)
			}
		}
	})
}

func TestAfterCommitRunsOnlyOnCommit(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		tx := data.NewTransaction(d)
		audit := data.NewAuditRepo(d)
		ctx := context.Background()
		record := func(ctx context.Context) error {
			return audit.Record(ctx, biz.AuditEvent{Actor: "system", Action: biz.AuditUserMerge, Subject: "u1", At: at(0)})
		}

		ran := 0
		data.AfterCommit(ctx, func() { ran++ })
		if ran != 1 {
			t.Fatalf("outside a transaction: ran %d times, want at once", ran)
		}

		ran = 0
		err := tx.InTx(ctx, func(ctx context.Context) error {
			if err := record(ctx); err != nil {
				return err
			}
			data.AfterCommit(ctx, func() { ran++ })
			if ran != 0 {
				t.Error("ran before the commit")
			}
			return nil
		})
		if err != nil || ran != 1 {
			t.Fatalf("committed: err %v, ran %d times, want once", err, ran)
		}

		ran = 0
		err = tx.InTx(ctx, func(ctx context.Context) error {
			if err := record(ctx); err != nil {
				return err
			}
			data.AfterCommit(ctx, func() { ran++ })
			return errBoom
		})
		if !errors.Is(err, errBoom) || ran != 0 {
			t.Fatalf("rolled back: err %v, ran %d times, want never", err, ran)
		}
	})
}
