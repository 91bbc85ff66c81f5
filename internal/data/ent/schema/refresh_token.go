package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// RefreshToken is one generation of a session's refresh token, stored only as
// a hash. Rotated generations are kept so that presenting one again is
// recognised as reuse (RFC 9700 §4.14) and revokes the session.
type RefreshToken struct{ ent.Schema }

// Mixin of the RefreshToken.
func (RefreshToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the RefreshToken.
func (RefreshToken) Fields() []ent.Field {
	return []ent.Field{
		// Hex SHA-256 of the token.
		field.String("token_hash").MaxLen(64).NotEmpty().Immutable().Sensitive(),
		field.String("session_id").MaxLen(40).NotEmpty().Immutable(),
		field.Time("expires_at").Immutable().SchemaType(datetime),
		// Set when this generation was exchanged for the next one.
		field.Time("rotated_at").Optional().Nillable().SchemaType(datetime),
	}
}

// Edges of the RefreshToken.
func (RefreshToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("session", Session.Type).Ref("refresh_tokens").Field("session_id").Unique().Required().Immutable(),
	}
}

// Indexes of the RefreshToken.
func (RefreshToken) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("token_hash").Unique(),
		index.Fields("session_id"),
	}
}
