package dbtest_test

import (
	"context"
	"testing"

	"github.com/mpauth/mpauth/internal/data/dbtest"
)

func TestOpenGivesAMigratedReachableDatabase(t *testing.T) {
	for _, driver := range dbtest.Drivers() {
		t.Run(driver, func(t *testing.T) {
			d := dbtest.Open(t, driver)
			if err := d.Ping(context.Background()); err != nil {
				t.Fatalf("ping: %v", err)
			}
		})
	}
}
