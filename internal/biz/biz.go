// Package biz holds mpauth's use cases and the repository interfaces they
// need. It knows nothing of ent, SQL, HTTP or gRPC.
package biz

import (
	"context"
	"errors"

	"github.com/google/wire"
)

// ProviderSet is biz providers.
var ProviderSet = wire.NewSet(NewAuthUsecase, NewAccountUsecase, NewTokenBroker, NewUnifier, NewAdminUsecase)

// Transaction runs fn in one database transaction: every repository call
// made with the ctx passed to fn joins it. fn's error rolls everything back.
type Transaction interface {
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}

// Errors the repositories report in storage-neutral terms.
var (
	// ErrNotFound: no such row.
	ErrNotFound = errors.New("not found")
	// ErrConcurrentUpdate: a concurrent transaction won a unique key or a
	// lock (duplicate key, deadlock, busy database). The whole transaction
	// can be retried and will then see the winner's rows.
	ErrConcurrentUpdate = errors.New("concurrent update")
)
