package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// clientTimeout bounds a control API call when ctx has no earlier deadline.
const clientTimeout = 10 * time.Second

var httpClient = &http.Client{Timeout: clientTimeout}

// MintCode asks the sandbox at baseURL (http://host:port) for a login code of
// user on the given app, as the mini-program's login call would return it.
func MintCode(ctx context.Context, baseURL, platform, appID, user string) (string, error) {
	body, err := json.Marshal(MintRequest{Platform: platform, AppID: appID, User: user})
	if err != nil {
		return "", err
	}
	u := strings.TrimRight(baseURL, "/") + "/sandbox/codes"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("sandbox: minting a code: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("sandbox: minting a code: %w (is the sandbox running at %s?)", err, baseURL)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("sandbox: minting a code: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return "", fmt.Errorf("sandbox: minting a code: %s: %s", resp.Status, e.Error)
		}
		return "", fmt.Errorf("sandbox: minting a code: %s: %q", resp.Status, snippet(raw))
	}
	var out MintResponse
	if err := json.Unmarshal(raw, &out); err != nil || out.Code == "" {
		return "", fmt.Errorf("sandbox: minting a code: unexpected answer %q", snippet(raw))
	}
	return out.Code, nil
}

func snippet(b []byte) string {
	const n = 200
	s := strings.TrimSpace(string(b))
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}
