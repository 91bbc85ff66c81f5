package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// CodeExchange records one login code being (or having been) exchanged, so
// a client's retry of the same code returns the same login instead of the
// platform's "code been used", whichever instance it reaches. Only a hash
// of the code is stored.
type CodeExchange struct{ ent.Schema }

// Fields of the CodeExchange.
func (CodeExchange) Fields() []ent.Field {
	return []ent.Field{
		// Hex SHA-256 of platform, app_id and the code(s).
		field.String("code_hash").MaxLen(64).NotEmpty().Immutable(),
		// pending: an instance is calling the platform; done: the login is recorded.
		field.Enum("state").Values("pending", "done"),
		// The instance exchanging it, and until when that claim holds.
		field.String("holder").MaxLen(64).Default(""),
		field.Time("lease_until").SchemaType(datetime),
		field.String("session_id").MaxLen(40).Default(""),
		field.String("user_id").MaxLen(40).Default(""),
		field.Bool("is_new_user").Default(false),
		// Rows are kept for the retry window, then purged.
		field.Time("expires_at").SchemaType(datetime),
	}
}

// Indexes of the CodeExchange.
func (CodeExchange) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("code_hash").Unique(),
		index.Fields("expires_at"),
	}
}
