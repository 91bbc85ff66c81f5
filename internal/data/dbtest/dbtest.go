// Package dbtest opens migrated, throwaway databases for tests: a SQLite file
// in the test's temp dir, and, when MPAUTH_TEST_MYSQL_DSN is set (CI always
// sets it), a fresh MySQL database per test on that server.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-sql-driver/mysql"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/secretbox"
)

// MySQLDSNEnv names the variable holding a MySQL DSN whose user may create
// and drop databases.
const MySQLDSNEnv = "MPAUTH_TEST_MYSQL_DSN"

// Drivers lists the drivers to run storage tests on: sqlite always, mysql
// when MPAUTH_TEST_MYSQL_DSN is set.
func Drivers() []string {
	if os.Getenv(MySQLDSNEnv) != "" {
		return []string{"sqlite", "mysql"}
	}
	return []string{"sqlite"}
}

// Config returns a data config of a fresh, empty database for driver,
// dropped when the test ends.
func Config(t testing.TB, driver string) *conf.Data {
	t.Helper()
	switch driver {
	case "sqlite":
		dir := t.TempDir()
		return &conf.Data{DataDir: dir, Database: &conf.Data_Database{Driver: "sqlite", Source: filepath.Join(dir, "mpauth.db")}}
	case "mysql":
		return &conf.Data{DataDir: t.TempDir(), Database: &conf.Data_Database{Driver: "mysql", Source: freshMySQL(t), MaxOpenConns: 16, MaxIdleConns: 16}}
	}
	t.Fatalf("dbtest: unknown driver %q", driver)
	return nil
}

// Open returns a migrated database for driver, closed when the test ends,
// encrypting secrets at rest with a fresh Box(t).
func Open(t testing.TB, driver string) *data.Data {
	t.Helper()
	return OpenConfig(t, Config(t, driver), Box(t))
}

// OpenConfig opens and migrates the database of c with box, closed when the
// test ends. Opening one Config twice with different boxes shows what
// instances with different key sets see.
func OpenConfig(t testing.TB, c *conf.Data, box *secretbox.Box) *data.Data {
	t.Helper()
	d, err := data.Open(c, log.DefaultLogger, data.WithSecretBox(box))
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", c.GetDatabase().GetDriver(), err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Migrate(context.Background()); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", c.GetDatabase().GetDriver(), err)
	}
	return d
}

// Box returns a secretbox with one fresh random key, id "test".
func Box(t testing.TB) *secretbox.Box {
	t.Helper()
	return BoxOf(t, "", Key(t, "test"))
}

// Key returns a fresh random secretbox key named id.
func Key(t testing.TB, id string) secretbox.Key {
	t.Helper()
	k, err := secretbox.GenerateKey(id)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return k
}

// BoxOf returns a secretbox of keys sealing with active ("": the only key).
func BoxOf(t testing.TB, active string, keys ...secretbox.Key) *secretbox.Box {
	t.Helper()
	b, err := secretbox.New(active, keys...)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return b
}

func freshMySQL(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(MySQLDSNEnv)
	if dsn == "" {
		t.Fatalf("dbtest: %s is not set", MySQLDSNEnv)
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("dbtest: %s: %v", MySQLDSNEnv, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "mpauth_t_" + hex.EncodeToString(b[:])
	admin := cfg.Clone()
	admin.DBName = ""
	db, err := sql.Open("mysql", admin.FormatDSN())
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	if _, err := db.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		_ = db.Close()
		t.Fatalf("dbtest: create database: %v", err)
	}
	t.Cleanup(func() {
		_, _ = db.Exec("DROP DATABASE IF EXISTS `" + name + "`")
		_ = db.Close()
	})
	cfg.DBName = name
	return cfg.FormatDSN()
}
