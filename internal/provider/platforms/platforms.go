// Package platforms assembles the provider registry from config: the one
// place that knows every supported platform.
package platforms

import (
	"fmt"
	"os"
	"strings"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/alipay"
	"github.com/mpauth/mpauth/internal/provider/baidu"
	"github.com/mpauth/mpauth/internal/provider/douyin"
	"github.com/mpauth/mpauth/internal/provider/kuaishou"
	"github.com/mpauth/mpauth/internal/provider/wechat"
)

// Factories maps each supported platform to its provider constructor.
var Factories = map[string]provider.Factory{
	provider.WeChat:   wechat.New,
	provider.Kuaishou: kuaishou.New,
	provider.Douyin:   douyin.New,
	provider.Alipay:   alipay.New,
	provider.Baidu:    baidu.New,
}

// Apps converts the configured apps, reading secret files.
func Apps(apps []*conf.App) ([]provider.App, error) {
	out := make([]provider.App, 0, len(apps))
	for i, a := range apps {
		secret, err := inlineOrFile(a.GetSecret(), a.GetSecretFile(), i, "secret")
		if err != nil {
			return nil, err
		}
		privateKey, err := inlineOrFile(a.GetPrivateKey(), a.GetPrivateKeyFile(), i, "private_key")
		if err != nil {
			return nil, err
		}
		publicKey, err := inlineOrFile(a.GetPlatformPublicKey(), a.GetPlatformPublicKeyFile(), i, "platform_public_key")
		if err != nil {
			return nil, err
		}
		out = append(out, provider.App{
			Platform:             a.GetPlatform(),
			AppID:                a.GetAppId(),
			Secret:               secret,
			UnionScope:           a.GetUnionScope(),
			Endpoint:             strings.TrimSuffix(a.GetEndpoint(), "/"),
			Timeout:              a.GetTimeout().AsDuration(),
			PrivateKeyPEM:        privateKey,
			PlatformPublicKeyPEM: publicKey,
			AESKey:               a.GetAesKey(),
			IdentityField:        a.GetIdentityField(),
			AllowGuests:          a.GetAllowGuests(),
		})
	}
	return out, nil
}

// inlineOrFile returns the inline value or the trimmed content of the file.
func inlineOrFile(inline, file string, i int, field string) (string, error) {
	if file == "" {
		return inline, nil
	}
	if inline != "" {
		return "", fmt.Errorf("config apps[%d]: set only one of %s and %s_file", i, field, field)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("config apps[%d].%s_file: %w", i, field, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// NewRegistry builds the provider of every configured app.
func NewRegistry(apps []*conf.App, env provider.Env) (*provider.Registry, error) {
	pa, err := Apps(apps)
	if err != nil {
		return nil, err
	}
	r, err := provider.NewRegistry(pa, Factories, env)
	if err != nil {
		return nil, fmt.Errorf("config %w", err)
	}
	return r, nil
}
