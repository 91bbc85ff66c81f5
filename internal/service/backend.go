package service

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
)

// BackendService implements v1.BackendServiceServer.
type BackendService struct {
	v1.UnimplementedBackendServiceServer
	auth  *biz.AuthUsecase
	admin *biz.AdminUsecase
}

// NewBackendService returns a BackendService.
func NewBackendService(auth *biz.AuthUsecase, admin *biz.AdminUsecase) *BackendService {
	return &BackendService{auth: auth, admin: admin}
}

func (s *BackendService) IntrospectToken(ctx context.Context, req *v1.IntrospectTokenRequest) (*v1.IntrospectTokenReply, error) {
	p, err := s.auth.Introspect(ctx, req.GetToken())
	if err != nil {
		return nil, err
	}
	if p == nil {
		return &v1.IntrospectTokenReply{Active: false}, nil
	}
	return &v1.IntrospectTokenReply{
		Active: true, Sub: p.UserID, UserId: p.UserID, Platform: p.Platform, AppId: p.AppID, Sid: p.SessionID,
		Exp: uint32(p.ExpiresAt.Unix()), Iat: uint32(p.IssuedAt.Unix()), TokenType: "Bearer",
	}, nil
}

func (s *BackendService) GetUser(ctx context.Context, req *v1.GetUserRequest) (*v1.User, error) {
	v, err := s.admin.User(ctx, req.GetUserId(), false)
	if err != nil {
		return nil, err
	}
	u := v.User
	out := &v1.User{
		UserId: v.Requested, CanonicalUserId: u.ID, CreatedAt: timestamppb.New(u.CreatedAt),
		PhoneNumber: u.PhoneNumber, CountryCode: u.PhoneCountryCode, Nickname: u.Nickname, AvatarUrl: u.AvatarURL,
	}
	if v.Requested != u.ID {
		out.MergedInto = u.ID
	}
	for _, i := range v.Identities {
		out.Identities = append(out.Identities, &v1.UserIdentity{Platform: i.Platform, AppId: i.AppID, Openid: i.OpenID})
	}
	return out, nil
}

func (s *BackendService) LookupIdentity(ctx context.Context, req *v1.LookupIdentityRequest) (*v1.LookupIdentityReply, error) {
	id, err := s.admin.IdentityOwner(ctx, req.GetPlatform(), req.GetAppId(), req.GetOpenid())
	if err != nil {
		return nil, err
	}
	return &v1.LookupIdentityReply{UserId: id}, nil
}

func fmtAny(v any) string { return fmt.Sprint(v) }
