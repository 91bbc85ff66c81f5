package data_test

import (
	"context"
	"errors"
	"testing"

	"github.com/go-kratos/kratos/v2/log"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
)

func TestReadyNeedsAReachableMigratedDatabase(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			ctx := context.Background()
			c := dbtest.Config(t, driver)
			d, err := data.Open(c, log.DefaultLogger, data.WithSecretBox(dbtest.Box(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()

			if err := d.Ready(ctx); !errors.Is(err, data.ErrSchemaNotMigrated) {
				t.Fatalf("empty database: Ready = %v, want ErrSchemaNotMigrated", err)
			}
			if err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := d.Ready(ctx); err != nil {
				t.Fatalf("migrated database: Ready = %v", err)
			}
			// A column of this version missing: the schema of an older one.
			if _, err := data.SQLDB(d).ExecContext(ctx, "ALTER TABLE platform_tokens DROP COLUMN lease_until"); err != nil {
				t.Fatal(err)
			}
			if err := d.Ready(ctx); !errors.Is(err, data.ErrSchemaNotMigrated) {
				t.Fatalf("older schema: Ready = %v, want ErrSchemaNotMigrated", err)
			}
			if err := d.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if err := d.Ready(ctx); err != nil {
				t.Fatalf("re-migrated: Ready = %v", err)
			}

			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if err := d.Ready(ctx); !errors.Is(err, data.ErrDatabaseUnreachable) {
				t.Fatalf("closed database: Ready = %v, want ErrDatabaseUnreachable", err)
			}
		})
	}
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
