package data

import (
	"context"
	stdsql "database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"

	"entgo.io/ent/dialect/sql/sqlgraph"
	"github.com/go-sql-driver/mysql"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent"
)

type txKey struct{}

type transaction struct{ d *Data }

// NewTransaction returns the biz.Transaction of d.
func NewTransaction(d *Data) biz.Transaction { return &transaction{d} }

// InTx runs fn in one transaction; repositories called with fn's ctx join it.
func (t *transaction) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if inTx(ctx) {
		return fn(ctx) // already in one: join it
	}
	// MySQL connections are in READ COMMITTED from the start (readCommitted).
	tx, err := t.d.db.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
		_ = tx.Rollback()
		return err
	}
	return mapErr(tx.Commit())
}

// txOf returns the transaction ctx carries (see Transaction.InTx).
func txOf(ctx context.Context) (*ent.Tx, bool) {
	tx, ok := ctx.Value(txKey{}).(*ent.Tx)
	return tx, ok
}

// inTx reports whether ctx carries a transaction.
func inTx(ctx context.Context) bool {
	_, ok := txOf(ctx)
	return ok
}

// sqlConn runs raw SQL; *ent.Client and *ent.Tx both do.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (stdsql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*stdsql.Rows, error)
}

// conn returns what runs raw SQL in ctx's transaction (the transaction
// itself: tx.Client() builds a client per entity the first time, ten
// allocations a login need not pay), or outside one.
func (d *Data) conn(ctx context.Context) sqlConn {
	if tx, ok := txOf(ctx); ok {
		return tx
	}
	return d.db
}

// client returns the transaction's client when ctx carries one.
func (d *Data) client(ctx context.Context) *ent.Client {
	if tx, ok := txOf(ctx); ok {
		return tx.Client()
	}
	return d.db
}

// AfterCommit runs fn once the transaction ctx carries (see
// Transaction.InTx) commits, never if it rolls back; without one, at once.
func AfterCommit(ctx context.Context, fn func()) {
	tx, ok := txOf(ctx)
	if !ok {
		fn()
		return
	}
	tx.OnCommit(func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			err := next.Commit(ctx, tx)
			if err == nil {
				fn()
			}
			return err
		})
	})
}

// updatedOne is the result of an update of one row by its id: ErrNotFound
// when no row matched. (ent's UpdateOne would read the row back: a second
// round trip, and a transaction of its own outside one.)
func updatedOne(n int, err error) error {
	if err == nil && n == 0 {
		return biz.ErrNotFound
	}
	return mapErr(err)
}

// mapErr turns driver and ent errors into biz's storage-neutral ones, so no
// raw driver text reaches a client.
func mapErr(err error) error {
	if err == nil {
		return nil // before me, which escapes: a nil costs no allocation
	}
	var me *mysql.MySQLError
	switch {
	case ent.IsNotFound(err):
		return biz.ErrNotFound
	case ent.IsConstraintError(err), sqlgraph.IsConstraintError(err): // the latter: statements of loginSQL
		return fmt.Errorf("%w: %v", biz.ErrConcurrentUpdate, err)
	case errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205 || me.Number == 1020):
		// Deadlock, lock wait timeout, and MariaDB's ER_CHECKREAD "Record
		// has changed since last read" (innodb_snapshot_isolation, ON by
		// default since 11.6.2): the transaction lost a race; retry it.
		return fmt.Errorf("%w: %v", biz.ErrConcurrentUpdate, err)
	case isSQLiteBusy(err):
		return fmt.Errorf("%w: %v", biz.ErrConcurrentUpdate, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", biz.ErrStorageUnavailable, err)
	case errors.Is(err, driver.ErrBadConn), isNetErr(err):
		return fmt.Errorf("%w: %v", biz.ErrStorageUnavailable, err)
	default:
		return fmt.Errorf("%w: %v", biz.ErrStorageUnavailable, err)
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// isSQLiteBusy matches SQLITE_BUSY/SQLITE_LOCKED without importing the
// driver's internals.
func isSQLiteBusy(err error) bool {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		c := coded.Code() & 0xff
		return c == 5 || c == 6
	}
	return false
}
