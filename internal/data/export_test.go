package data

import (
	"time"

	"github.com/mpauth/mpauth/internal/data/ent"
)

// EntClient exposes d's ent client to the external data_test package, for
// reading back rows no repository method returns (audit events, counts).
func EntClient(d *Data) *ent.Client { return d.db }

// SetSessionCacheClock makes d's session cache read time from now.
func SetSessionCacheClock(d *Data, now func() time.Time) { d.sessions.now = now }
