package provider

import (
	"fmt"
	"sort"
)

// Factory builds the provider of one app.
type Factory func(App, Env) (Provider, error)

// Registry holds the provider of every configured app, looked up by
// (platform, app_id).
type Registry struct {
	apps map[appKey]entry
}

type appKey struct{ platform, appID string }

type entry struct {
	app App
	p   Provider
}

// NewRegistry builds a provider for each app with its platform's factory.
// With env.Resilience set, every provider (and every access-token fetch it
// makes through env.Tokens) is guarded by one Resilience: per-call
// deadlines, retries of transient failures, a circuit breaker per platform.
func NewRegistry(apps []App, factories map[string]Factory, env Env) (*Registry, error) {
	r := &Registry{apps: make(map[appKey]entry, len(apps))}
	var res *Resilience
	if env.Resilience != nil {
		res = NewResilience(*env.Resilience, env.Observer)
		env.Tokens = res.Tokens(env.Tokens)
	}
	for i, a := range apps {
		f, ok := factories[a.Platform]
		if !ok {
			return nil, fmt.Errorf("apps[%d].platform: unknown platform %q (supported: %v)", i, a.Platform, names(factories))
		}
		if a.AppID == "" {
			return nil, fmt.Errorf("apps[%d].app_id: required", i)
		}
		k := appKey{a.Platform, a.AppID}
		if _, dup := r.apps[k]; dup {
			return nil, fmt.Errorf("apps[%d]: %s app %q is configured twice", i, a.Platform, a.AppID)
		}
		if err := ValidateEndpoint(a.Endpoint); err != nil {
			return nil, fmt.Errorf("apps[%d].endpoint: %w", i, err)
		}
		p, err := f(a, env)
		if err != nil {
			return nil, fmt.Errorf("apps[%d] (%s %s): %w", i, a.Platform, a.AppID, err)
		}
		if res != nil {
			p = res.Wrap(p, a)
		}
		r.apps[k] = entry{app: a, p: p}
	}
	return r, nil
}

// Lookup returns the app and its provider.
func (r *Registry) Lookup(platform, appID string) (App, Provider, bool) {
	e, ok := r.apps[appKey{platform, appID}]
	return e.app, e.p, ok
}

// Apps lists every configured app.
func (r *Registry) Apps() []App {
	out := make([]App, 0, len(r.apps))
	for _, e := range r.apps {
		out = append(out, e.app)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Platform != out[j].Platform {
			return out[i].Platform < out[j].Platform
		}
		return out[i].AppID < out[j].AppID
	})
	return out
}

func names(m map[string]Factory) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
