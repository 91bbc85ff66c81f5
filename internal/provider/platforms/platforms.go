// Package platforms assembles the provider registry from config: the one
// place that knows every supported platform.
package platforms

import (
	"fmt"
	"os"
	"strings"

	"github.com/mpauth/mpauth/internal/conf"
	"github.com/mpauth/mpauth/internal/provider"
	"github.com/mpauth/mpauth/internal/provider/wechat"
)

// Factories maps each supported platform to its provider constructor.
var Factories = map[string]provider.Factory{
	provider.WeChat: wechat.New,
}

// Apps converts the configured apps, reading secret files.
func Apps(apps []*conf.App) ([]provider.App, error) {
	out := make([]provider.App, 0, len(apps))
	for i, a := range apps {
		secret := a.GetSecret()
		if f := a.GetSecretFile(); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("config apps[%d].secret_file: %w", i, err)
			}
			secret = strings.TrimSpace(string(b))
		}
		out = append(out, provider.App{
			Platform:   a.GetPlatform(),
			AppID:      a.GetAppId(),
			Secret:     secret,
			UnionScope: a.GetUnionScope(),
			Endpoint:   strings.TrimSuffix(a.GetEndpoint(), "/"),
			Timeout:    a.GetTimeout().AsDuration(),
		})
	}
	return out, nil
}

// NewRegistry builds the provider of every configured app.
func NewRegistry(apps []*conf.App) (*provider.Registry, error) {
	pa, err := Apps(apps)
	if err != nil {
		return nil, err
	}
	r, err := provider.NewRegistry(pa, Factories)
	if err != nil {
		return nil, fmt.Errorf("config %w", err)
	}
	return r, nil
}
