package service

import (
	"context"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
)

// AdminService implements v1.AdminServiceServer.
type AdminService struct {
	v1.UnimplementedAdminServiceServer
	uc *biz.AdminUsecase
}

// NewAdminService returns an AdminService.
func NewAdminService(uc *biz.AdminUsecase) *AdminService { return &AdminService{uc: uc} }

func (s *AdminService) ListUsers(ctx context.Context, req *v1.ListUsersRequest) (*v1.ListUsersReply, error) {
	users, next, err := s.uc.FindUsers(ctx, biz.UserFilter{
		Platform: req.GetPlatform(), AppID: req.GetAppId(), OpenID: req.GetOpenid(),
		UnionScope: req.GetUnionScope(), UnionID: req.GetUnionid(), Phone: req.GetPhone(),
	}, biz.Page{Size: int(req.GetPageSize()), Token: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &v1.ListUsersReply{NextPageToken: next}
	for _, u := range users {
		v, err := s.uc.User(ctx, u.ID, false)
		if err != nil {
			return nil, err
		}
		out.Users = append(out.Users, adminUser(v))
	}
	return out, nil
}

func (s *AdminService) GetUser(ctx context.Context, req *v1.AdminGetUserRequest) (*v1.AdminUser, error) {
	v, err := s.uc.User(ctx, req.GetUserId(), true)
	if err != nil {
		return nil, err
	}
	return adminUser(v), nil
}

func (s *AdminService) LinkIdentity(ctx context.Context, req *v1.IdentityChangeRequest) (*v1.AdminUser, error) {
	u, err := s.uc.Link(ctx, req.GetUserId(), req.GetPlatform(), req.GetAppId(), req.GetOpenid(), change(ctx, req.GetReason()))
	if err != nil {
		return nil, err
	}
	return s.GetUser(ctx, &v1.AdminGetUserRequest{UserId: u.ID})
}

func (s *AdminService) UnlinkIdentity(ctx context.Context, req *v1.IdentityChangeRequest) (*v1.UnlinkIdentityReply, error) {
	u, err := s.uc.Unlink(ctx, req.GetUserId(), req.GetPlatform(), req.GetAppId(), req.GetOpenid(), change(ctx, req.GetReason()))
	if err != nil {
		return nil, err
	}
	nu, err := s.GetUser(ctx, &v1.AdminGetUserRequest{UserId: u.ID})
	if err != nil {
		return nil, err
	}
	return &v1.UnlinkIdentityReply{NewUser: nu}, nil
}

func (s *AdminService) MergeUsers(ctx context.Context, req *v1.MergeUsersRequest) (*v1.AdminUser, error) {
	u, err := s.uc.Merge(ctx, req.GetUserId(), req.GetSourceUserId(), req.GetForce(), change(ctx, req.GetReason()))
	if err != nil {
		return nil, err
	}
	return s.GetUser(ctx, &v1.AdminGetUserRequest{UserId: u.ID})
}

func (s *AdminService) RevokeSessions(ctx context.Context, req *v1.RevokeSessionsRequest) (*v1.RevokeSessionsReply, error) {
	ids, err := s.uc.RevokeSessions(ctx, req.GetUserId(), change(ctx, req.GetReason()))
	if err != nil {
		return nil, err
	}
	return &v1.RevokeSessionsReply{RevokedSessionIds: ids}, nil
}

func (s *AdminService) ListAuditEvents(ctx context.Context, req *v1.ListAuditEventsRequest) (*v1.ListAuditEventsReply, error) {
	f := biz.AuditFilter{Subject: req.GetUserId(), Actor: req.GetActor(), Action: req.GetAction()}
	var err error
	if f.Since, err = parseTime("since", req.GetSince()); err != nil {
		return nil, err
	}
	if f.Until, err = parseTime("until", req.GetUntil()); err != nil {
		return nil, err
	}
	events, next, err := s.uc.Audit(ctx, f, biz.Page{Size: int(req.GetPageSize()), Token: req.GetPageToken()})
	if err != nil {
		return nil, err
	}
	out := &v1.ListAuditEventsReply{NextPageToken: next}
	for _, e := range events {
		details, err := structpb.NewStruct(jsonSafe(e.Details))
		if err != nil {
			details = nil
		}
		out.Events = append(out.Events, &v1.AuditEvent{
			Time: timestamppb.New(e.At), Actor: e.Actor, Action: e.Action, UserId: e.Subject, Reason: e.Reason, Details: details,
		})
	}
	return out, nil
}

// change names the operator (the API key id) and their reason.
func change(ctx context.Context, reason string) biz.Change {
	actor := "admin"
	if c, ok := biz.CallerFromContext(ctx); ok {
		actor = "admin:" + c.KeyID
	}
	return biz.Change{Actor: actor, Reason: reason}
}

func parseTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, v1.ErrorInvalidArgument("%s: not an RFC 3339 time (e.g. 2026-11-24T08:00:00Z)", field).WithMetadata(map[string]string{"field": field})
	}
	return t, nil
}

// jsonSafe round-trips audit details into what structpb accepts.
func jsonSafe(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = jsonValue(v)
	}
	return out
}

func jsonValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		return jsonSafe(t)
	case []map[string]any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = jsonSafe(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = jsonValue(e)
		}
		return out
	case []string:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = e
		}
		return out
	case int:
		return float64(t)
	case int64:
		return float64(t)
	case bool, string, float64, nil:
		return t
	default:
		return fmtAny(t)
	}
}

func adminUser(v *biz.UserView) *v1.AdminUser {
	u := v.User
	out := &v1.AdminUser{
		UserId:          v.Requested,
		CanonicalUserId: u.ID,
		CreatedAt:       timestamppb.New(u.CreatedAt),
		PhoneNumber:     u.PhoneNumber,
		CountryCode:     u.PhoneCountryCode,
		Nickname:        u.Nickname,
		AvatarUrl:       u.AvatarURL,
		Aliases:         v.Aliases,
	}
	if v.Requested != u.ID {
		out.MergedInto = u.ID
	}
	for _, i := range v.Identities {
		out.Identities = append(out.Identities, &v1.AdminIdentity{
			Platform: i.Platform, AppId: i.AppID, Openid: i.OpenID, UnionScope: i.UnionScope, Unionid: i.UnionID,
			CreatedAt: timestamppb.New(i.CreatedAt), LastLoginAt: timestamppb.New(i.LastLoginAt),
		})
	}
	for _, s := range v.Sessions {
		si := &v1.SessionInfo{SessionId: s.ID, Platform: s.Platform, AppId: s.AppID, CreatedAt: timestamppb.New(s.CreatedAt), RevokeReason: s.RevokeReason}
		if s.RevokedAt != nil {
			si.RevokedAt = timestamppb.New(*s.RevokedAt)
		}
		out.Sessions = append(out.Sessions, si)
	}
	return out
}
