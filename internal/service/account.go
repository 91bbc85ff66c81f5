package service

import (
	"context"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
)

// AccountService implements v1.AccountServiceServer.
type AccountService struct {
	v1.UnimplementedAccountServiceServer
	uc *biz.AccountUsecase
}

// NewAccountService returns an AccountService.
func NewAccountService(uc *biz.AccountUsecase) *AccountService { return &AccountService{uc: uc} }

func (s *AccountService) GetMe(ctx context.Context, _ *emptypb.Empty) (*v1.Me, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	u, ids, err := s.uc.Me(ctx, p)
	if err != nil {
		return nil, err
	}
	out := &v1.Me{UserId: u.ID, CreatedAt: timestamppb.New(u.CreatedAt)}
	for _, i := range ids {
		out.Identities = append(out.Identities, &v1.LinkedIdentity{
			Platform:    i.Platform,
			AppId:       i.AppID,
			CreatedAt:   timestamppb.New(i.CreatedAt),
			LastLoginAt: timestamppb.New(i.LastLoginAt),
		})
	}
	return out, nil
}
