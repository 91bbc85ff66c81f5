package data

import (
	"context"

	"github.com/mpauth/mpauth/internal/biz"
)

type auditRepo struct{ d *Data }

// NewAuditRepo returns the biz.AuditRepo on d.
func NewAuditRepo(d *Data) biz.AuditRepo { return &auditRepo{d} }

func (r *auditRepo) Record(ctx context.Context, e biz.AuditEvent) error {
	q := r.d.client(ctx).AuditEvent.Create().
		SetActor(e.Actor).
		SetAction(e.Action).
		SetSubject(e.Subject).
		SetReason(e.Reason).
		SetDetails(e.Details)
	if !e.At.IsZero() {
		q.SetCreatedAt(e.At)
	}
	return mapErr(q.Exec(ctx))
}
