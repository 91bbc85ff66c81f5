package provider_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mpauth/mpauth/internal/provider"
)

func TestDecodeAnswerAcceptsOnlyAJSONObjectWith200(t *testing.T) {
	const secretBody = `{"openid":"o1","session_key":"c2VjcmV0c2VjcmV0c2VjcmV0"`
	tests := []struct {
		name          string
		status        int
		body          string
		wantMessage   string // "": success
		wantRetryable bool
	}{
		{name: "an object", status: 200, body: `{"errcode":0,"openid":"o1"}`},
		{name: "an object with white space around it", status: 200, body: "\n  {\"openid\":\"o1\"}  \r\n"},
		{name: "HTTP 502 is retryable", status: 502, body: `{"openid":"o1"}`, wantMessage: "unexpected HTTP status 502", wantRetryable: true},
		{name: "HTTP 504 is not: the platform may have acted", status: 504, body: ``, wantMessage: "unexpected HTTP status 504"},
		{name: "HTTP 404", status: 404, body: `{}`, wantMessage: "unexpected HTTP status 404"},
		{name: "empty body", status: 200, body: ``, wantMessage: "empty answer"},
		{name: "blank body", status: 200, body: " \n\t", wantMessage: "empty answer"},
		{name: "null", status: 200, body: `null`, wantMessage: "answer is not a JSON object (4 bytes)"},
		{name: "an array", status: 200, body: `[{}]`, wantMessage: "answer is not a JSON object (4 bytes)"},
		{name: "HTML", status: 200, body: `<html>busy</html>`, wantMessage: "answer is not a JSON object (17 bytes)"},
		{name: "a field of the wrong type", status: 200, body: `{"openid":1}`, wantMessage: "undecodable answer (12 bytes)"},
		{name: "a truncated success never quotes the body", status: 200, body: secretBody, wantMessage: "undecodable answer (55 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v struct {
				OpenID string `json:"openid"`
			}
			err := provider.DecodeAnswer(provider.WeChat, tt.status, []byte(tt.body), &v)
			if tt.wantMessage == "" {
				if err != nil || v.OpenID != "o1" {
					t.Fatalf("DecodeAnswer = %v, openid %q; want o1", err, v.OpenID)
				}
				return
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || !errors.Is(err, provider.ErrUnavailable) {
				t.Fatalf("DecodeAnswer = %v, want an ErrUnavailable *provider.Error", err)
			}
			if pe.Platform != provider.WeChat || pe.Message != tt.wantMessage || pe.Retryable != tt.wantRetryable || pe.Code != "" {
				t.Errorf("error = %+v, want message %q, retryable %v", pe, tt.wantMessage, tt.wantRetryable)
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error %q quotes the body", err)
			}
		})
	}
}
