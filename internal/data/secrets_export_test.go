package data

import "database/sql"

// SQLDB exposes d's database handle to the external data_test package, for
// reading columns as stored (e.g. that secrets are not stored in clear).
func SQLDB(d *Data) *sql.DB { return d.sqlDB }
