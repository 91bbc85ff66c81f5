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
		return &conf.Data{DataDir: t.TempDir(), Database: &conf.Data_Database{Driver: "mysql", Source: freshMySQL(t), MaxOpenConns: 64, MaxIdleConns: 64}}
	}
	t.Fatalf("dbtest: unknown driver %q", driver)
	return nil
}

// Open returns a migrated database for driver, closed when the test ends.
func Open(t testing.TB, driver string) *data.Data {
	t.Helper()
	d, err := data.Open(Config(t, driver), log.DefaultLogger)
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", driver, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	if err := d.Migrate(context.Background()); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", driver, err)
	}
	return d
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
