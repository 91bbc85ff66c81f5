package data_test

import (
	"context"
	"errors"
	"testing"

	"github.com/go-kratos/kratos/v2/log"

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
