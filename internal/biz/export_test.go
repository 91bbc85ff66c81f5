package biz

import "time"

// SetClock replaces uc's clock, for the external biz_test package.
func SetClock(uc *AuthUsecase, now func() time.Time) { uc.now = now }

// RefreshReuseGrace exposes refreshReuseGrace to biz_test.
const RefreshReuseGrace = refreshReuseGrace

// CodeHash exposes codeHash to biz_test.
var CodeHash = codeHash

// TimeOrderedID exposes timeOrderedID to biz_test.
var TimeOrderedID = timeOrderedID
