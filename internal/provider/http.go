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
		timedOut := errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded)
		if timedOut {
			msg = msgTimedOut
		}
		// Only a failed dial proves the platform never saw the request; a
		// timeout or a failure after the connection was made does not.
		retryable := !timedOut && dialFailed(err)
		if retryable {
			msg = "connection failed"
		}
		return 0, nil, &Error{Kind: ErrUnavailable, Platform: platform, Message: msg, Retryable: retryable}
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

// dialFailed reports whether err is a failure to connect (refused,
// unreachable, no such host): nothing was sent.
func dialFailed(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" && !op.Timeout() {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) && !dns.IsTimeout
}

// BadStatus is the ErrUnavailable of an answer with an unexpected HTTP
// status. A 5xx is retryable (the platform's front refused the call), except
// 504: a gateway timeout may come after the platform acted.
func BadStatus(platform string, status int) *Error {
	e := Unavailable(platform, "unexpected HTTP status %d", status)
	e.Retryable = status >= 500 && status <= 599 && status != http.StatusGatewayTimeout
	return e
}

// DefaultRetryAfter is the back-off reported with a rate limit when the
// platform gives no hint of its own.
const DefaultRetryAfter = 60 * time.Second

// Unavailable builds an ErrUnavailable with a short description.
func Unavailable(platform, format string, args ...any) *Error {
	return &Error{Kind: ErrUnavailable, Platform: platform, Message: fmt.Sprintf(format, args...)}
}
