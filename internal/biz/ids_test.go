package biz_test

import (
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/mpauth/mpauth/internal/biz"
)

func TestTimeOrderedIDsSortByCreationTimeAndDiffer(t *testing.T) {
	base := time.Date(2026, 11, 25, 4, 0, 0, 0, time.UTC)
	offsets := []time.Duration{0, time.Millisecond, 2 * time.Millisecond, time.Second, time.Hour, 24 * 365 * time.Hour, 100 * 365 * 24 * time.Hour}
	var ids []string
	for _, d := range offsets {
		ids = append(ids, biz.TimeOrderedID("u_", base.Add(d)))
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("ids of increasing times do not sort in order: %v", ids)
	}
	shape := regexp.MustCompile(`^u_[0-9a-v]{26}$`)
	for _, id := range ids {
		if !shape.MatchString(id) {
			t.Fatalf("id %q, want u_ and 26 characters of [0-9a-v]", id)
		}
	}
	// Within one millisecond only the random part differs.
	a, b := biz.TimeOrderedID("s_", base), biz.TimeOrderedID("s_", base)
	if a == b || a[:11] != b[:11] { // 48 bits of time fill 9 characters and a part of the tenth
		t.Fatalf("two ids of one millisecond %q, %q: want the same time prefix and different random parts", a, b)
	}
}

func TestNewIDsAreFreshAndOfTheirKind(t *testing.T) {
	tests := []struct {
		name   string
		newID  func() string
		prefix string
	}{
		{"user", biz.NewUserID, "u_"},
		{"session", biz.NewSessionID, "s_"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 1000 {
				id := tt.newID()
				if id[:2] != tt.prefix || len(id) != 28 || seen[id] {
					t.Fatalf("id %q: want %s + 26 characters, never repeated", id, tt.prefix)
				}
				seen[id] = true
			}
		})
	}
}
