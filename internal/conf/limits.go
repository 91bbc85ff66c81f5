package conf

import (
	"fmt"
	"net"
	"net/netip"
)

// Default login limits (limits.login_per_*_per_minute: 0).
const (
	DefaultLoginPerIPPerMinute       = 120
	DefaultLoginPerIdentityPerMinute = 30
	// DefaultRedisKeyPrefix prefixes mpauth's Redis keys.
	DefaultRedisKeyPrefix = "mpauth:"
)

func applyLimitDefaults(bc *Bootstrap) {
	if bc.Limits == nil {
		bc.Limits = &Limits{}
	}
	if bc.Limits.LoginPerIpPerMinute == 0 {
		bc.Limits.LoginPerIpPerMinute = DefaultLoginPerIPPerMinute
	}
	if bc.Limits.LoginPerIdentityPerMinute == 0 {
		bc.Limits.LoginPerIdentityPerMinute = DefaultLoginPerIdentityPerMinute
	}
	if bc.Redis != nil && bc.Redis.Addr != "" && bc.Redis.KeyPrefix == "" {
		bc.Redis.KeyPrefix = DefaultRedisKeyPrefix
	}
}

// ParseTrustedProxies parses limits.trusted_proxies: IP addresses or CIDRs.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("config limits.trusted_proxies[%d]: %q is not an IP address or CIDR (e.g. 10.0.0.0/8)", i, s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func validateLimits(l *Limits, r *Redis) error {
	if v := l.GetLoginPerIpPerMinute(); v < -1 {
		return fmt.Errorf("config limits.login_per_ip_per_minute: %d is invalid: a positive limit, 0 for the default (%d) or -1 for none", v, DefaultLoginPerIPPerMinute)
	}
	if v := l.GetLoginPerIdentityPerMinute(); v < -1 {
		return fmt.Errorf("config limits.login_per_identity_per_minute: %d is invalid: a positive limit, 0 for the default (%d) or -1 for none", v, DefaultLoginPerIdentityPerMinute)
	}
	if _, err := ParseTrustedProxies(l.GetTrustedProxies()); err != nil {
		return err
	}
	if r.GetAddr() != "" {
		if _, _, err := net.SplitHostPort(r.GetAddr()); err != nil {
			return fmt.Errorf("config redis.addr: %q is not host:port (e.g. 127.0.0.1:6379)", r.GetAddr())
		}
	}
	if r.GetDb() < 0 {
		return fmt.Errorf("config redis.db: %d is invalid: a database number, 0 or more", r.GetDb())
	}
	return nil
}
