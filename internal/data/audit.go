package data

import (
	"context"
	"strconv"

	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/data/ent"
	"github.com/mpauth/mpauth/internal/data/ent/auditevent"
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

func (r *auditRepo) List(ctx context.Context, f biz.AuditFilter, p biz.Page) ([]biz.AuditEvent, string, error) {
	q := r.d.client(ctx).AuditEvent.Query()
	if f.Subject != "" {
		q = q.Where(auditevent.Subject(f.Subject))
	}
	if f.Actor != "" {
		q = q.Where(auditevent.Actor(f.Actor))
	}
	if f.Action != "" {
		q = q.Where(auditevent.Action(f.Action))
	}
	if !f.Since.IsZero() {
		q = q.Where(auditevent.CreatedAtGTE(f.Since))
	}
	if !f.Until.IsZero() {
		q = q.Where(auditevent.CreatedAtLT(f.Until))
	}
	if p.Token != "" {
		id, err := strconv.Atoi(p.Token)
		if err != nil {
			return nil, "", biz.ErrBadPageToken
		}
		q = q.Where(auditevent.IDLT(id))
	}
	// Ids grow with insertion order, so id order is newest first and stable.
	rows, err := q.Order(ent.Desc(auditevent.FieldID)).Limit(p.Size + 1).All(ctx)
	if err != nil {
		return nil, "", mapErr(err)
	}
	next := ""
	if len(rows) > p.Size {
		rows = rows[:p.Size]
		next = strconv.Itoa(rows[len(rows)-1].ID)
	}
	out := make([]biz.AuditEvent, len(rows))
	for i, e := range rows {
		out[i] = biz.AuditEvent{Actor: e.Actor, Action: e.Action, Subject: e.Subject, Reason: e.Reason, Details: e.Details, At: e.CreatedAt}
	}
	return out, next, nil
}
