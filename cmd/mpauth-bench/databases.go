package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // the same pure-Go driver mpauth uses

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
	"github.com/mpauth/mpauth/internal/secretbox"
)

// database is one throwaway database the server, the minimal login and the
// seeder share.
type database struct {
	driver string // "sqlite" or "mysql"
	// source is data.database.source of mpauth's config. For SQLite it is the
	// full DSN mpauth builds for a file (same pragmas, same locking), so the
	// minimal login opens the database exactly as mpauth does.
	source string
	drop   func()
}

// defaultMySQLDSN is the local MariaDB of development machines.
const defaultMySQLDSN = "root@tcp(127.0.0.1:3306)/"

// newSQLite returns a fresh SQLite database file under dir.
func newSQLite(dir, name string) *database {
	path := filepath.Join(dir, name+".db")
	return &database{driver: "sqlite", source: data.SQLiteDSN(path), drop: func() {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(path + suffix)
		}
	}}
}

// mysqlServer is a reachable MySQL server the benchmark may create databases on.
type mysqlServer struct {
	cfg   *mysql.Config
	admin *sql.DB
}

// reachMySQL connects to dsn's server; the error says why it cannot be used.
func reachMySQL(ctx context.Context, dsn string) (*mysqlServer, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("the DSN is not valid (user:pass@tcp(host:3306)/): %v", err)
	}
	cfg.DBName = ""
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	admin := sql.OpenDB(connector)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		_ = admin.Close()
		return nil, fmt.Errorf("%s is not reachable: %v", cfg.Addr, err)
	}
	return &mysqlServer{cfg: cfg, admin: admin}, nil
}

// version is the server's version and the settings that bound a login's
// cost (a commit's flush, the cache the tables must fit in).
func (m *mysqlServer) version(ctx context.Context) string {
	var (
		v     string
		flush int
		pool  int64
	)
	if err := m.admin.QueryRowContext(ctx, "SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@innodb_buffer_pool_size").Scan(&v, &flush, &pool); err != nil {
		return v
	}
	return fmt.Sprintf("%s (innodb_flush_log_at_trx_commit=%d, innodb_buffer_pool_size=%d MB)", v, flush, pool>>20)
}

// newDatabase creates a throwaway database, dropped by its drop func.
func (m *mysqlServer) newDatabase(ctx context.Context) (*database, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "mpauth_bench_" + hex.EncodeToString(b[:])
	if _, err := m.admin.ExecContext(ctx, "CREATE DATABASE `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return nil, fmt.Errorf("creating a throwaway database: %v", err)
	}
	cfg := m.cfg.Clone()
	cfg.DBName = name
	return &database{driver: "mysql", source: cfg.FormatDSN(), drop: func() {
		_, _ = m.admin.Exec("DROP DATABASE IF EXISTS `" + name + "`")
	}}, nil
}

func (m *mysqlServer) close() { _ = m.admin.Close() }

// pool is the connection pool settings mpauth is configured with; the
// minimal login uses the same.
type pool struct {
	maxOpen, maxIdle int
	maxLifetime      time.Duration
}

// poolFor is the pool both mpauth (through its config) and the minimal
// login get: the production shape of configs/mysql.example.yaml (32 open,
// as many idle) on either database.
func poolFor(driver string) pool {
	if driver == "mysql" {
		return pool{maxOpen: 32, maxIdle: 32, maxLifetime: 5 * time.Minute}
	}
	return pool{maxOpen: 32, maxIdle: 32}
}

// openSQL opens the database as internal/data's Open does: the same driver,
// the same connection settings (MySQL: data.MySQLConnector) and pool.
func openSQL(driver, source string, p pool) (*sql.DB, error) {
	var (
		db  *sql.DB
		err error
	)
	switch driver {
	case "sqlite":
		db, err = sql.Open("sqlite", source)
	case "mysql":
		connector, cerr := data.MySQLConnector(source)
		if cerr != nil {
			return nil, cerr
		}
		db = sql.OpenDB(connector)
	default:
		return nil, fmt.Errorf("unknown driver %q", driver)
	}
	if err != nil {
		return nil, err
	}
	if p.maxOpen > 0 {
		db.SetMaxOpenConns(p.maxOpen)
	}
	if p.maxIdle > 0 {
		db.SetMaxIdleConns(p.maxIdle)
	}
	if p.maxLifetime > 0 {
		db.SetConnMaxLifetime(p.maxLifetime)
	}
	return db, nil
}

// seedBatch is the rows per INSERT statement; seedTx the rows per
// transaction.
const (
	seedBatch = 1000
	seedTx    = 20000
)

// seedUsers bulk-inserts users [from, to) of the benchmark app (one user and
// one identity each, as a first login leaves them: the session_key sealed
// with box as mpauth seals it, so a returning login rewrites a value of the
// same size) with multi-row INSERTs in large transactions. Their openids are
// openIDOf(n), so the fake platform logs them in as returning users.
func seedUsers(ctx context.Context, driver, source string, box *secretbox.Box, platform, appID string, from, to uint64) error {
	// One connection, with the checks a bulk load of known-good rows can
	// skip: foreign keys (every identity's user is in the same statement
	// batch) and, on SQLite, the flush of every commit.
	db, err := openSQL(driver, source, pool{maxOpen: 1, maxIdle: 1})
	if err != nil {
		return err
	}
	defer db.Close()
	session := []string{"SET SESSION foreign_key_checks = 0"}
	if driver == "sqlite" {
		session = []string{"PRAGMA foreign_keys = OFF", "PRAGMA synchronous = OFF"}
	}
	for _, q := range session {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("seeding: %s: %w", q, err)
		}
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	userStmt := func(rows int) string {
		return "INSERT INTO users (id, created_at, updated_at, phone_number, phone_country_code, nickname, avatar_url) VALUES " +
			placeholders(rows, 7)
	}
	identStmt := func(rows int) string {
		return "INSERT INTO identities (created_at, updated_at, platform, app_id, openid, union_scope, unionid, session_key, last_login_at, user_id) VALUES " +
			placeholders(rows, 10)
	}
	for txFrom := from; txFrom < to; txFrom += seedTx {
		txTo := min(txFrom+seedTx, to)
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
		for b := txFrom; b < txTo; b += seedBatch {
			e := min(b+seedBatch, txTo)
			n := int(e - b)
			users := make([]any, 0, n*7)
			idents := make([]any, 0, n*10)
			for u := b; u < e; u++ {
				id := biz.NewUserID()
				sessionKey, err := box.Seal(newSessionKey(), data.SessionKeyAAD(platform, appID, openIDOf(u))...)
				if err != nil {
					_ = tx.Rollback()
					return fmt.Errorf("seeding: %w", err)
				}
				users = append(users, id, now, now, "", "", "", "")
				idents = append(idents, now, now, platform, appID, openIDOf(u), "", "", sessionKey, now, id)
			}
			if _, err := tx.ExecContext(ctx, userStmt(n), users...); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("seeding users: %w", err)
			}
			if _, err := tx.ExecContext(ctx, identStmt(n), idents...); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("seeding identities: %w", err)
			}
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
	}
	return nil
}

// placeholders is "(?,?,…),(?,?,…)…" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}
