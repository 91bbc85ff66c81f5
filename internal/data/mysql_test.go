package data_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/data/dbtest"
)

// The connection settings transactions rely on hold on every connection of
// the pool, whatever the DSN asks for.
func TestMySQLConnectionsAreReadCommittedWithMatchedRows(t *testing.T) {
	if !hasDriver("mysql") {
		t.Skip("MySQL only (set " + dbtest.MySQLDSNEnv + "); .ci/run always does")
	}
	// A DSN asking for another isolation level does not get it.
	dsn := dbtest.Config(t, "mysql").GetDatabase().GetSource()
	if strings.Contains(dsn, "?") {
		dsn += "&tx_isolation=%27SERIALIZABLE%27"
	} else {
		dsn += "?tx_isolation=%27SERIALIZABLE%27"
	}
	c, err := data.MySQLConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	defer db.Close()
	ctx := context.Background()
	// Several connections at once, each in a transaction begun without an
	// isolation level (as internal/data begins them).
	var txs []*sql.Tx
	for i := 0; i < 4; i++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		txs = append(txs, tx)
	}
	for i, tx := range txs {
		var level string
		if err := tx.QueryRow("SELECT @@SESSION.tx_isolation").Scan(&level); err != nil {
			// MySQL 8 names it transaction_isolation only.
			if err := tx.QueryRow("SELECT @@SESSION.transaction_isolation").Scan(&level); err != nil {
				t.Fatal(err)
			}
		}
		if level != "READ-COMMITTED" {
			t.Errorf("connection %d: isolation %s, want READ-COMMITTED", i, level)
		}
	}

	// Rows affected counts rows matched: an update that changes nothing
	// still reports the row (what "not found" checks rely on).
	if _, err := db.Exec("CREATE TABLE t (id INT PRIMARY KEY, v INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1, 7)"); err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec("UPDATE t SET v = 7 WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Errorf("unchanged update affected %d rows, want 1 (matched)", n)
	}
}

func hasDriver(name string) bool {
	for _, d := range dbtest.Drivers() {
		if d == name {
			return true
		}
	}
	return false
}
