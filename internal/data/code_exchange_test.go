package data_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data"
)

func TestPurgeDeletesOnlyExpiredCodeRecordsAndAtMostTheLimit(t *testing.T) {
	eachDriver(t, func(t *testing.T, d *data.Data) {
		ctx := context.Background()
		repo := data.NewCodeExchangeRepo(d)
		claim := func(hash string, expiresAt int) {
			t.Helper()
			ok, _, err := repo.Claim(ctx, hash, "wechat", "wx-a", "i_1", at(0), at(20), at(expiresAt))
			if err != nil || !ok {
				t.Fatalf("Claim(%s) = %v, %v", hash, ok, err)
			}
		}
		for i := 0; i < 5; i++ {
			claim(fmt.Sprintf("expired-%d", i), 600) // expire at +10 min
		}
		claim("live", 1200)

		// Three at a time: the oldest batch goes first, the live one stays.
		if err := repo.Purge(ctx, at(601), 3); err != nil {
			t.Fatal(err)
		}
		if n := remaining(t, repo, 5); n != 2 {
			t.Fatalf("after a purge of at most 3: %d expired records left, want 2", n)
		}
		if err := repo.Purge(ctx, at(601), 3); err != nil {
			t.Fatal(err)
		}
		if n := remaining(t, repo, 5); n != 0 {
			t.Fatalf("after the second purge: %d expired records left, want 0", n)
		}
		if _, err := repo.Get(ctx, "live"); err != nil {
			t.Fatalf("the unexpired record was purged: %v", err)
		}
		// Nothing left to purge is not an error.
		if err := repo.Purge(ctx, at(601), 3); err != nil {
			t.Fatal(err)
		}
	})
}

// remaining counts the records expired-0 … expired-(n-1) still stored.
func remaining(t *testing.T, repo biz.CodeExchangeRepo, n int) int {
	t.Helper()
	left := 0
	for i := 0; i < n; i++ {
		_, err := repo.Get(context.Background(), fmt.Sprintf("expired-%d", i))
		switch {
		case err == nil:
			left++
		case !errors.Is(err, biz.ErrNotFound):
			t.Fatal(err)
		}
	}
	return left
}
