package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// datetime stores times as DATETIME(6) on MySQL: microsecond order and no
// 2038 limit (ent's default there is TIMESTAMP).
var datetime = map[string]string{dialect.MySQL: "datetime(6)"}

// TimeMixin gives an entity created_at and updated_at.
type TimeMixin struct{ mixin.Schema }

// Fields of the TimeMixin.
func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Default(time.Now).Immutable().SchemaType(datetime),
		field.Time("updated_at").Default(time.Now).UpdateDefault(time.Now).SchemaType(datetime),
	}
}
