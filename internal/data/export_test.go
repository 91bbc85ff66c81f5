package data

import "github.com/mpauth/mpauth/internal/data/ent"

// EntClient exposes d's ent client to the external data_test package, for
// reading back rows no repository method returns (audit events, counts).
func EntClient(d *Data) *ent.Client { return d.db }
