package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Identity is one platform account (an openid of one app) owned by a user.
type Identity struct{ ent.Schema }

// Mixin of the Identity.
func (Identity) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Identity.
func (Identity) Fields() []ent.Field {
	return []ent.Field{
		field.String("platform").MaxLen(16).NotEmpty().Immutable(),
		field.String("app_id").MaxLen(64).NotEmpty().Immutable(),
		field.String("openid").MaxLen(128).NotEmpty().Immutable(),
		// The union scope the unionid was issued in; empty when the app has none.
		field.String("union_scope").MaxLen(64).Default(""),
		field.String("unionid").MaxLen(128).Default(""),
		// The platform's session_key for decrypting user data; never leaves the
		// server. Stored sealed (internal/secretbox: "v1.<kid>.<base64url>",
		// about 4/3 of the key plus 70 characters), or plaintext in rows
		// written before encryption at rest.
		field.String("session_key").MaxLen(1024).Default("").Sensitive(),
		field.Time("last_login_at").SchemaType(datetime),
		field.String("user_id").MaxLen(40).NotEmpty(),
	}
}

// Edges of the Identity.
func (Identity) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("owner", User.Type).Ref("identities").Field("user_id").Unique().Required(),
	}
}

// Indexes of the Identity.
func (Identity) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("platform", "app_id", "openid").Unique(),
		index.Fields("user_id"),
		// Admin search by unionid.
		index.Fields("platform", "union_scope", "unionid"),
	}
}
