package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// PlatformToken is an app's platform access token (WeChat stable_token,
// Baidu oauth token, Douyin/Kuaishou client tokens), shared by every mpauth
// instance. The lease columns let exactly one instance refresh it at a time.
type PlatformToken struct{ ent.Schema }

// Mixin of the PlatformToken.
func (PlatformToken) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the PlatformToken.
func (PlatformToken) Fields() []ent.Field {
	return []ent.Field{
		field.String("platform").MaxLen(16).NotEmpty().Immutable(),
		field.String("app_id").MaxLen(64).NotEmpty().Immutable(),
		// WeChat asks for at least 512 characters of storage; sealed
		// (internal/secretbox) a 2048-character token takes about 2800.
		field.String("token").MaxLen(4096).Default("").Sensitive(),
		field.Time("expires_at").Optional().Nillable().SchemaType(datetime),
		// Set when the platform rejected the token: the next caller forces a refresh.
		field.Bool("invalid").Default(false),
		// The instance refreshing the token, until lease_until.
		field.String("lease_holder").MaxLen(64).Default(""),
		field.Time("lease_until").Optional().Nillable().SchemaType(datetime),
	}
}

// Indexes of the PlatformToken.
func (PlatformToken) Indexes() []ent.Index {
	return []ent.Index{index.Fields("platform", "app_id").Unique()}
}
