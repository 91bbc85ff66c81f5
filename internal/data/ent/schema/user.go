package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
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
		// Set when this user was merged into another: the id stays an alias
		// of merged_into (which may itself be merged further).
		field.String("merged_into").MaxLen(40).Optional().Nillable(),
		field.Time("merged_at").Optional().Nillable().SchemaType(datetime),
	}
}

// Indexes of the User.
func (User) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("phone_number"),
		index.Fields("merged_into"),
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
