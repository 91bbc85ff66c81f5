package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// User is one person: the unified user id every app and platform maps to.
type User struct{ ent.Schema }

// Mixin of the User.
func (User) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		// Random, unguessable, never reused (see biz.NewUserID).
		field.String("id").MaxLen(40).NotEmpty().Immutable(),
		// The verified phone number (as the platform gives it: with the
		// country code for non-mainland numbers) and its country code.
		field.String("phone_number").MaxLen(32).Default(""),
		field.String("phone_country_code").MaxLen(8).Default(""),
		field.Time("phone_verified_at").Optional().Nillable().SchemaType(datetime),
		field.String("nickname").MaxLen(128).Default(""),
		field.String("avatar_url").MaxLen(1024).Default(""),
	}
}

// Edges of the User.
func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("identities", Identity.Type),
		edge.To("union_accounts", UnionAccount.Type),
		edge.To("sessions", Session.Type),
	}
}
