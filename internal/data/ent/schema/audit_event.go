package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEvent is an append-only record of something that changed who owns what
// (merges, links, revocations, refresh-token reuse). Details carry enough of
// the before/after to reconstruct and reverse it by hand.
type AuditEvent struct{ ent.Schema }

// Fields of the AuditEvent.
func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Default(time.Now).Immutable().SchemaType(datetime),
		// Who did it: "system", "user:<id>", "admin:<key id>".
		field.String("actor").MaxLen(128).NotEmpty().Immutable(),
		field.String("action").MaxLen(64).NotEmpty().Immutable(),
		// The user it happened to.
		field.String("subject").MaxLen(40).Default("").Immutable(),
		field.String("reason").MaxLen(512).Default("").Immutable(),
		field.JSON("details", map[string]any{}).Optional().Immutable(),
	}
}

// Indexes of the AuditEvent.
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("subject", "created_at"),
		index.Fields("action", "created_at"),
		index.Fields("created_at"),
	}
}
