package service

import (
	"context"

	"google.golang.org/protobuf/types/known/emptypb"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/provider"
)

// AuthService implements v1.AuthServiceServer.
type AuthService struct {
	v1.UnimplementedAuthServiceServer
	uc *biz.AuthUsecase
}

// NewAuthService returns an AuthService.
func NewAuthService(uc *biz.AuthUsecase) *AuthService { return &AuthService{uc: uc} }

func (s *AuthService) Login(ctx context.Context, req *v1.LoginRequest) (*v1.TokenReply, error) {
	pair, err := s.uc.Login(ctx, req.GetPlatform(), req.GetAppId(), provider.Credentials{Code: req.GetCode(), AnonymousCode: req.GetAnonymousCode()})
	if err != nil {
		return nil, err
	}
	noStore(ctx)
	return tokenReply(pair), nil
}

func (s *AuthService) Refresh(ctx context.Context, req *v1.RefreshRequest) (*v1.TokenReply, error) {
	pair, err := s.uc.Refresh(ctx, req.GetRefreshToken())
	if err != nil {
		return nil, err
	}
	noStore(ctx)
	return tokenReply(pair), nil
}

func (s *AuthService) Logout(ctx context.Context, _ *emptypb.Empty) (*emptypb.Empty, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.uc.Logout(ctx, p); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func tokenReply(p *biz.TokenPair) *v1.TokenReply {
	return &v1.TokenReply{
		AccessToken:      p.AccessToken,
		TokenType:        "Bearer",
		ExpiresIn:        int32(p.AccessExpiresIn.Seconds()),
		RefreshToken:     p.RefreshToken,
		RefreshExpiresIn: int32(p.RefreshExpiresIn.Seconds()),
		UserId:           p.UserID,
		IsNewUser:        p.IsNewUser,
	}
}
