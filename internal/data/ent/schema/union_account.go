package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// UnionAccount records which user owns a unionid within one (platform, union
// scope). Its unique key is what keeps two first logins of one person, racing
// through two apps of the same scope, from creating two users.
type UnionAccount struct{ ent.Schema }

// Mixin of the UnionAccount.
func (UnionAccount) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the UnionAccount.
func (UnionAccount) Fields() []ent.Field {
	return []ent.Field{
		field.String("platform").MaxLen(16).NotEmpty().Immutable(),
		field.String("union_scope").MaxLen(64).NotEmpty().Immutable(),
		field.String("unionid").MaxLen(128).NotEmpty().Immutable(),
		field.String("user_id").MaxLen(40).NotEmpty(),
	}
}

// Edges of the UnionAccount.
func (UnionAccount) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("owner", User.Type).Ref("union_accounts").Field("user_id").Unique().Required(),
	}
}

// Indexes of the UnionAccount.
func (UnionAccount) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("platform", "union_scope", "unionid").Unique(),
		index.Fields("user_id"),
	}
}
