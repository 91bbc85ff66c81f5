package observability

import (
	"context"

	"github.com/mpauth/mpauth/internal/biz"
)

// AfterCommit runs fn once the transaction ctx carries commits (never, if
// it rolls back), or at once when ctx carries none. data.AfterCommit is the
// one of the database.
type AfterCommit func(ctx context.Context, fn func())

// AuditRepo wraps an audit repository to count the audited events that have
// metrics: merges (by actor kind) and refresh-token reuse. Events are
// counted once their transaction commits, so a rolled-back or retried
// transaction counts nothing extra. A nil afterCommit counts at once.
func (m *Metrics) AuditRepo(inner biz.AuditRepo, afterCommit AfterCommit) biz.AuditRepo {
	if afterCommit == nil {
		afterCommit = func(_ context.Context, fn func()) { fn() }
	}
	return &auditRepo{AuditRepo: inner, m: m, afterCommit: afterCommit}
}

type auditRepo struct {
	biz.AuditRepo
	m           *Metrics
	afterCommit AfterCommit
}

func (r *auditRepo) Record(ctx context.Context, e biz.AuditEvent) error {
	if err := r.AuditRepo.Record(ctx, e); err != nil {
		return err
	}
	switch e.Action {
	case biz.AuditUserMerge:
		actor := e.Actor
		r.afterCommit(ctx, func() { r.m.Merge(actor) })
	case biz.AuditRefreshTokenReuse:
		r.afterCommit(ctx, r.m.RefreshReuse)
	}
	return nil
}
