// Package data implements biz's repositories on ent, over the embedded
// SQLite (default) or MySQL.
package data

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-sql-driver/mysql"
	"github.com/google/wire"
	_ "modernc.org/sqlite" // the embedded, pure-Go SQLite driver ("sqlite")

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/migrate"
	"github.com/mpauth/mpauth/internal/secretbox"
)

// ProviderSet is data providers.
// The biz.AuditRepo is NewAuditRepo wrapped by cmd/mpauth (observability.go)
// to count merges and refresh-token reuse.
var ProviderSet = wire.NewSet(NewData, NewTransaction, NewAccountRepo, NewSessionRepo, NewPlatformTokenRepo, NewCodeExchangeRepo)

// Data holds the database client shared by the repositories.
type Data struct {
	db     *ent.Client
	sqlDB  *sql.DB
	driver string
	log    *log.Helper
	// box encrypts session_keys and platform tokens at rest; nil: the
	// repositories storing them fail (see WithSecretBox).
	box *secretbox.Box
	// sessions remembers sessions for token checks; nil: off.
	sessions *sessionCache
	// sql holds the statements of the login path.
	sql loginSQL
}

// Option configures Open.
type Option func(*Data)

// WithSecretBox sets the box that encrypts secrets at rest. Without it the
// database opens (for migrations), but storing or reading a session_key or
// platform token fails.
func WithSecretBox(b *secretbox.Box) Option { return func(d *Data) { d.box = b } }

// NewData opens the configured database (and migrates it when configured);
// box encrypts the secrets the repositories store.
func NewData(c *conf.Data, box *secretbox.Box, logger log.Logger) (*Data, func(), error) {
	if box == nil {
		return nil, nil, fmt.Errorf("data: no secretbox: secrets at rest need secrets.keys")
	}
	d, err := Open(c, logger, WithSecretBox(box))
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() {
		if err := d.Close(); err != nil {
			d.log.Errorw("msg", "closing the database failed", "err", err)
		}
	}
	if c.GetDatabase().GetMigrateOnStart() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := d.Migrate(ctx); err != nil {
			cleanup()
			return nil, nil, err
		}
	}
	return d, cleanup, nil
}

// Open opens the database without migrating it.
func Open(c *conf.Data, logger log.Logger, opts ...Option) (*Data, error) {
	db := c.GetDatabase()
	var (
		sqlDB   *sql.DB
		dialect string
		err     error
	)
	switch db.GetDriver() {
	case "sqlite", "":
		sqlDB, err = openSQLite(sqliteDSN(c))
		dialect = "sqlite3"
	case "mysql":
		sqlDB, err = openMySQL(db.GetSource())
		dialect = "mysql"
	default:
		return nil, fmt.Errorf("data.database.driver: unknown driver %q (use sqlite or mysql)", db.GetDriver())
	}
	if err != nil {
		return nil, err
	}
	// Keep as many idle connections as may be open: database/sql's default
	// of 2 idle makes a busy server close and reopen connections on almost
	// every request (measured: a tenth of a login's CPU on SQLite).
	maxOpen := int(db.GetMaxOpenConns())
	if maxOpen <= 0 {
		maxOpen = defaultMaxOpenConns
	}
	maxIdle := int(db.GetMaxIdleConns())
	if maxIdle <= 0 || maxIdle > maxOpen {
		maxIdle = maxOpen
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxIdle)
	if d := db.GetConnMaxLifetime(); d != nil {
		sqlDB.SetConnMaxLifetime(d.AsDuration())
	}
	ttl := defaultSessionCacheTTL
	if t := c.GetSessionCacheTtl(); t != nil {
		ttl = t.AsDuration()
	}
	d := &Data{
		db:       ent.NewClient(ent.Driver(entsql.OpenDB(dialect, sqlDB))),
		sqlDB:    sqlDB,
		driver:   dialect,
		log:      log.NewHelper(log.With(logger, "module", "data")),
		sessions: newSessionCache(ttl),
		sql:      newLoginSQL(dialect),
	}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// defaultMaxOpenConns bounds an instance's connections when the config does
// not: size instances × connections under MySQL's max_connections.
const defaultMaxOpenConns = 32

// Close closes the database.
func (d *Data) Close() error { return d.db.Close() }

// Migrate creates or upgrades the schema. It only adds tables, columns and
// indexes; it never drops anything, so instances of the previous version keep
// working while a new one rolls out.
func (d *Data) Migrate(ctx context.Context) error {
	if err := d.db.Schema.Create(ctx, migrate.WithForeignKeys(true)); err != nil {
		return fmt.Errorf("migrating the %s schema: %w", d.driver, err)
	}
	return nil
}

// MigrationPlan writes the statements Migrate would run, without running them.
func (d *Data) MigrationPlan(ctx context.Context, w interface{ Write([]byte) (int, error) }) error {
	return d.db.Schema.WriteTo(ctx, w, migrate.WithForeignKeys(true))
}

// Ping checks the database is reachable.
func (d *Data) Ping(ctx context.Context) error { return d.sqlDB.PingContext(ctx) }

func sqliteDSN(c *conf.Data) string {
	src := c.GetDatabase().GetSource()
	if src == "" {
		dir := c.GetDataDir()
		if dir == "" {
			dir = "data"
		}
		src = filepath.Join(dir, "mpauth.db")
	}
	if strings.HasPrefix(src, "file:") || strings.Contains(src, "?") {
		return src
	}
	return SQLiteDSN(src)
}

// SQLiteDSN is the DSN mpauth opens the SQLite file at path with. WAL lets
// readers run beside the writer; immediate transactions take the write lock
// up front so two logins never deadlock upgrading read locks.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

func openSQLite(dsn string) (*sql.DB, error) {
	if path, ok := strings.CutPrefix(dsn, "file:"); ok {
		path, _, _ = strings.Cut(path, "?")
		if path != "" && !strings.HasPrefix(path, ":memory:") {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("data.data_dir: creating %s: %w", filepath.Dir(path), err)
			}
		}
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("data.database.source: opening sqlite: %w", err)
	}
	return db, nil
}

func openMySQL(dsn string) (*sql.DB, error) {
	c, err := MySQLConnector(dsn)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// MySQLConnector connects to MySQL as mpauth does, whatever the DSN says:
// parseTime in UTC, utf8mb4_bin, arguments interpolated client-side, rows
// affected counted as matched, and every connection in READ COMMITTED.
func MySQLConnector(dsn string) (driver.Connector, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("data.database.source: not a valid MySQL DSN (user:pass@tcp(host:3306)/db): %v", redactDSNError(err))
	}
	// What the schema and the repositories rely on, whatever the DSN says.
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	// Send each statement with its arguments in one round trip instead of
	// prepare, execute and close (three): safe with utf8mb4, which the
	// driver requires for client-side interpolation.
	cfg.InterpolateParams = true
	// Rows affected = rows matched, as in SQLite: an update of a row whose
	// values did not change still proves the row exists.
	cfg.ClientFoundRows = true
	if err := cfg.Apply(mysql.Charset("utf8mb4", "utf8mb4_bin")); err != nil {
		return nil, fmt.Errorf("data.database.source: %v", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("data.database.source: %v", redactDSNError(err))
	}
	return readCommitted{connector}, nil
}

// readCommitted sets each connection's isolation level once, when it
// connects: a transaction begun with an isolation level costs a SET
// TRANSACTION round trip before every START TRANSACTION.
//
// READ COMMITTED because correctness rests on unique keys and row locks (FOR
// UPDATE), not on snapshots; InnoDB's default REPEATABLE READ adds gap locks
// that make concurrent first logins deadlock often.
type readCommitted struct{ driver.Connector }

func (c readCommitted) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("mysql connection cannot execute statements")
	}
	if _, err := ex.ExecContext(ctx, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", nil); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// redactDSNError describes a DSN error without quoting the DSN, which holds
// the password (the driver's parse errors never quote it either).
func redactDSNError(err error) string { return err.Error() }

// Dialect reports "sqlite3" or "mysql".
func (d *Data) Dialect() string { return d.driver }
