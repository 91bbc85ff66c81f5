package service

import (
	"context"

	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/mpauth/mpauth/api/mpauth/v1"
	"github.com/mpauth/mpauth/internal/biz"
	"github.com/mpauth/mpauth/internal/provider"
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
	return me(u, ids), nil
}

func me(u *biz.User, ids []*biz.Identity) *v1.Me {
	out := &v1.Me{
		UserId:      u.ID,
		CreatedAt:   timestamppb.New(u.CreatedAt),
		PhoneNumber: u.PhoneNumber,
		CountryCode: u.PhoneCountryCode,
		Nickname:    u.Nickname,
		AvatarUrl:   u.AvatarURL,
	}
	for _, i := range ids {
		out.Identities = append(out.Identities, &v1.LinkedIdentity{
			Platform:    i.Platform,
			AppId:       i.AppID,
			CreatedAt:   timestamppb.New(i.CreatedAt),
			LastLoginAt: timestamppb.New(i.LastLoginAt),
		})
	}
	return out
}

func (s *AccountService) SetPhone(ctx context.Context, req *v1.SetPhoneRequest) (*v1.PhoneReply, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	phone, err := s.uc.SetPhone(ctx, p, biz.PhoneInput{
		Code:      req.GetCode(),
		Encrypted: provider.EncryptedData{Data: req.GetEncryptedData(), IV: req.GetIv(), Sign: req.GetSign()},
	})
	if err != nil {
		return nil, err
	}
	return &v1.PhoneReply{PhoneNumber: phone.Number, CountryCode: phone.CountryCode}, nil
}

func (s *AccountService) SetProfile(ctx context.Context, req *v1.SetProfileRequest) (*v1.Me, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.uc.SetProfile(ctx, p, biz.ProfileInput{
		Encrypted: provider.EncryptedData{Data: req.GetEncryptedData(), IV: req.GetIv()},
		Nickname:  req.GetNickname(),
		AvatarURL: req.GetAvatarUrl(),
	}); err != nil {
		return nil, err
	}
	return s.GetMe(ctx, nil)
}

func (s *AccountService) BindIdentity(ctx context.Context, req *v1.BindIdentityRequest) (*v1.Me, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.uc.BindIdentity(ctx, p, req.GetPlatform(), req.GetAppId(), req.GetCode()); err != nil {
		return nil, err
	}
	return s.GetMe(ctx, nil)
}

func (s *AccountService) UnbindIdentity(ctx context.Context, req *v1.UnbindIdentityRequest) (*v1.Me, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.uc.UnbindIdentity(ctx, p, req.GetPlatform(), req.GetAppId()); err != nil {
		return nil, err
	}
	return s.GetMe(ctx, nil)
}
