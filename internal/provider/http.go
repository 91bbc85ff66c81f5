package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// DefaultTimeout bounds a platform call when the app sets none.
const DefaultTimeout = 3 * time.Second

// maxBody caps what we read of a platform answer; real ones are < 2 KiB.
const maxBody = 1 << 20

// NewHTTPClient returns the client providers call platforms with: bounded
// dial, TLS and header timeouts, and no redirects (platform APIs never
// redirect; following one could leak a secret in the query string).
func NewHTTPClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Do sends req and returns the status and body. Transport failures, timeouts
// and oversized bodies come back as ErrUnavailable of the given platform;
// the error text never includes the URL (it may carry a secret).
func Do(ctx context.Context, c *http.Client, platform string, req *http.Request) (int, []byte, error) {
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		msg := "request failed"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) {
			msg = "timed out"
		}
		return 0, nil, &Error{Kind: ErrUnavailable, Platform: platform, Message: msg}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, &Error{Kind: ErrUnavailable, Platform: platform, Message: "reading the answer failed"}
	}
	if len(body) > maxBody {
		return 0, nil, &Error{Kind: ErrUnavailable, Platform: platform, Message: "answer too large"}
	}
	return resp.StatusCode, body, nil
}

// Unavailable builds an ErrUnavailable with a short description.
func Unavailable(platform, format string, args ...any) *Error {
	return &Error{Kind: ErrUnavailable, Platform: platform, Message: fmt.Sprintf(format, args...)}
}
