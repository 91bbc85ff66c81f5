package data

import (
	"context"
	"database/sql"
	"fmt"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent/codeexchange"
	"github.com/mpauth/mpauth/internal/data/ent/identity"
	"github.com/mpauth/mpauth/internal/data/ent/refreshtoken"
	"github.com/mpauth/mpauth/internal/data/ent/session"
	"github.com/mpauth/mpauth/internal/data/ent/user"
)

// loginSQL holds the statements every login runs, built once per database by
// ent's SQL builder from the generated table and column names and run on the
// ent client's driver (in the transaction when there is one). Building them
// through ent's query API on every call was ~40% of a login's allocations
// (issue #6's profiles); everything else still goes through ent.
type loginSQL struct {
	claimCode, completeCode           string
	findIdentity, findUser            readSQL
	findIdentityAndOwner              readSQL // an identity and its user's alias: a returning login's read
	recordLogin, recordLoginWithKey   string
	createUser, createIdentity        string
	createSession, createRefreshToken string
}

// readSQL is a read in two forms: as is, and locking the rows it reads
// until the transaction ends (FOR UPDATE on MySQL; on SQLite a write
// transaction holds the whole database, so both forms are the same).
type readSQL struct{ plain, locking string }

// in is the form for ctx: locking inside a transaction.
func (q readSQL) in(ctx context.Context) string {
	if inTx(ctx) {
		return q.locking
	}
	return q.plain
}

// newLoginSQL builds the statements for dialect ("mysql" or "sqlite3").
// Row locks (FOR UPDATE) exist on MySQL only; on SQLite a write transaction
// holds the whole database.
func newLoginSQL(dialect string) loginSQL {
	b := entsql.Dialect(dialect)
	read := func(q func() *entsql.Selector, n int) readSQL {
		r := readSQL{plain: built(q(), n)}
		r.locking = r.plain
		if dialect == "mysql" {
			r.locking = built(q().ForUpdate(), n)
		}
		return r
	}
	identityCols := []string{identity.FieldID, identity.FieldCreatedAt, identity.FieldPlatform, identity.FieldAppID,
		identity.FieldOpenid, identity.FieldUnionScope, identity.FieldUnionid, identity.FieldLastLoginAt, identity.FieldUserID}
	userCols := []string{user.FieldID, user.FieldCreatedAt, user.FieldPhoneNumber, user.FieldPhoneCountryCode,
		user.FieldNickname, user.FieldAvatarURL, user.FieldMergedInto, user.FieldMergedAt}
	findIdentity := func() *entsql.Selector {
		return b.Select(identityCols...).From(b.Table(identity.Table)).Where(entsql.And(
			entsql.EQ(identity.FieldPlatform, 0), entsql.EQ(identity.FieldAppID, 1), entsql.EQ(identity.FieldOpenid, 2)))
	}
	findUser := func() *entsql.Selector {
		return b.Select(userCols...).From(b.Table(user.Table)).Where(entsql.EQ(user.FieldID, 0))
	}
	findIdentityAndOwner := func() *entsql.Selector {
		i, u := b.Table(identity.Table), b.Table(user.Table).As("owner")
		cols := make([]string, 0, len(identityCols)+1)
		for _, c := range identityCols {
			cols = append(cols, i.C(c))
		}
		// Of the user only its alias: every column costs the MySQL driver a
		// column definition to parse, rows or not. The identity's key is
		// read back, not taken from the arguments: MySQL's _bin collations
		// ignore trailing spaces, and the session_key's seal is bound to the
		// key as stored.
		cols = append(cols, u.C(user.FieldMergedInto))
		return b.Select(cols...).From(i).Join(u).On(i.C(identity.FieldUserID), u.C(user.FieldID)).Where(entsql.And(
			entsql.EQ(i.C(identity.FieldPlatform), 0), entsql.EQ(i.C(identity.FieldAppID), 1), entsql.EQ(i.C(identity.FieldOpenid), 2)))
	}
	recordLogin := []string{identity.FieldUpdatedAt, identity.FieldLastLoginAt, identity.FieldUnionScope, identity.FieldUnionid}
	return loginSQL{
		claimCode: insert(b, codeexchange.Table, codeexchange.FieldCodeHash, codeexchange.FieldState, codeexchange.FieldHolder,
			codeexchange.FieldLeaseUntil, codeexchange.FieldSessionID, codeexchange.FieldUserID, codeexchange.FieldIsNewUser,
			codeexchange.FieldExpiresAt),
		completeCode: update(b, codeexchange.Table,
			[]string{codeexchange.FieldState, codeexchange.FieldSessionID, codeexchange.FieldUserID, codeexchange.FieldIsNewUser},
			codeexchange.FieldCodeHash, codeexchange.FieldHolder),
		findIdentity: read(findIdentity, 3),
		findUser:     read(findUser, 1),
		// Locks both rows, the identity's first, as FindIdentity then
		// LockUser would.
		findIdentityAndOwner: read(findIdentityAndOwner, 3),
		recordLogin:          update(b, identity.Table, recordLogin, identity.FieldID),
		recordLoginWithKey:   update(b, identity.Table, append(recordLogin, identity.FieldSessionKey), identity.FieldID),
		createUser: insert(b, user.Table, user.FieldID, user.FieldCreatedAt, user.FieldUpdatedAt, user.FieldPhoneNumber,
			user.FieldPhoneCountryCode, user.FieldNickname, user.FieldAvatarURL),
		createIdentity: insert(b, identity.Table, identity.FieldCreatedAt, identity.FieldUpdatedAt, identity.FieldPlatform,
			identity.FieldAppID, identity.FieldOpenid, identity.FieldUnionScope, identity.FieldUnionid, identity.FieldSessionKey,
			identity.FieldLastLoginAt, identity.FieldUserID),
		createSession: insert(b, session.Table, session.FieldID, session.FieldCreatedAt, session.FieldUpdatedAt,
			session.FieldUserID, session.FieldPlatform, session.FieldAppID, session.FieldRevokeReason),
		createRefreshToken: insert(b, refreshtoken.Table, refreshtoken.FieldCreatedAt, refreshtoken.FieldUpdatedAt,
			refreshtoken.FieldTokenHash, refreshtoken.FieldSessionID, refreshtoken.FieldExpiresAt),
	}
}

// insert is INSERT INTO table (columns) VALUES (?, ...), arguments in
// column order.
func insert(b *entsql.DialectBuilder, table string, columns ...string) string {
	values := make([]any, len(columns))
	for i := range values {
		values[i] = i
	}
	return built(b.Insert(table).Columns(columns...).Values(values...), len(columns))
}

// update is UPDATE table SET set... WHERE where = ? AND ..., arguments in
// that order.
func update(b *entsql.DialectBuilder, table string, set []string, where ...string) string {
	u := b.Update(table)
	for i, c := range set {
		u.Set(c, i)
	}
	preds := make([]*entsql.Predicate, len(where))
	for i, c := range where {
		preds[i] = entsql.EQ(c, len(set)+i)
	}
	return built(u.Where(entsql.And(preds...)), len(set)+len(where))
}

// built returns q's SQL after checking that the builder kept its n
// arguments (each given its index) in order, so callers can pass theirs
// positionally.
func built(q entsql.Querier, n int) string {
	query, args := q.Query()
	if len(args) != n {
		panic(fmt.Sprintf("data: %q takes %d arguments, want %d", query, len(args), n))
	}
	for i, a := range args {
		if a != i {
			panic(fmt.Sprintf("data: %q reorders its arguments: %v", query, args))
		}
	}
	return query
}

// validate runs ent's generated field validators, which ent's builders run
// before a write and these statements would otherwise skip.
func validate(checks ...fieldCheck) error {
	for _, c := range checks {
		if c.err != nil {
			return fmt.Errorf("data: %s: %w", c.field, c.err)
		}
	}
	return nil
}

type fieldCheck struct {
	field string
	err   error
}

// execOne runs a statement that must change one row: ErrNotFound when none
// matched (MySQL counts matched rows: see MySQLConnector's ClientFoundRows).
func execOne(ctx context.Context, c sqlConn, query string, args ...any) error {
	res, err := c.ExecContext(ctx, query, args...)
	if err != nil {
		return mapErr(err)
	}
	n, err := res.RowsAffected()
	return updatedOne(int(n), err)
}

// queryOne scans the one row query returns into dest: ErrNotFound when
// there is none.
func queryOne(ctx context.Context, c sqlConn, query string, args []any, dest ...any) error {
	rows, err := c.QueryContext(ctx, query, args...)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return mapErr(err)
		}
		return biz.ErrNotFound
	}
	if err := rows.Scan(dest...); err != nil {
		return mapErr(err)
	}
	return mapErr(rows.Close())
}

// nillable is a nullable column's value as ent's Nillable fields hold it.
func nillable[T any](v sql.Null[T]) *T {
	if !v.Valid {
		return nil
	}
	return &v.V
}
