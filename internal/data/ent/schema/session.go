package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Session is one login: the `sid` of its access tokens and the family of its
// rotating refresh tokens. Revoking it ends both.
type Session struct{ ent.Schema }

// Mixin of the Session.
func (Session) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Session.
func (Session) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").MaxLen(40).NotEmpty().Immutable(),
		field.String("user_id").MaxLen(40).NotEmpty(),
		// The app the user logged in through.
		field.String("platform").MaxLen(16).NotEmpty().Immutable(),
		field.String("app_id").MaxLen(64).NotEmpty().Immutable(),
		field.Time("revoked_at").Optional().Nillable().SchemaType(datetime),
		field.String("revoke_reason").MaxLen(64).Default(""),
	}
}

// Edges of the Session.
func (Session) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("owner", User.Type).Ref("sessions").Field("user_id").Unique().Required(),
		edge.To("refresh_tokens", RefreshToken.Type),
	}
}

// Indexes of the Session.
func (Session) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id")}
}
