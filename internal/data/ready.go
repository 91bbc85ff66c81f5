package data

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/mpauth/mpauth/internal/data/ent/migrate"
)

// Errors of Ready. Their text is safe to show a load balancer: no DSN, host
// or driver message.
var (
	ErrDatabaseUnreachable = errors.New("database unreachable")
	ErrSchemaNotMigrated   = errors.New("database schema not migrated (run mpauth migrate)")
)

// Ready reports whether the instance can serve: the database answers and
// every table and column of this version's schema exists (a query of
// them that reads no rows). The errors wrap ErrDatabaseUnreachable or
// ErrSchemaNotMigrated and carry the driver's error for the server log.
func (d *Data) Ready(ctx context.Context) error {
	if err := d.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrDatabaseUnreachable, err)
	}
	for _, t := range migrate.Tables {
		cols := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			cols[i] = "`" + c.Name + "`"
		}
		// LIMIT 0: the database checks every name and reads nothing.
		q := "SELECT " + strings.Join(cols, ", ") + " FROM `" + t.Name + "` LIMIT 0"
		rows, err := d.sqlDB.QueryContext(ctx, q)
		if err == nil {
			err = rows.Close()
		}
		if err != nil {
			if ctx.Err() != nil || isUnreachable(err) {
				return fmt.Errorf("%w: %w", ErrDatabaseUnreachable, err)
			}
			return fmt.Errorf("%w: table %s: %w", ErrSchemaNotMigrated, t.Name, err)
		}
	}
	return nil
}

// isUnreachable tells a lost or refused connection from a query error.
func isUnreachable(err error) bool {
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) || isNetErr(err)
}
