package observability_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-kratos/kratos/v2/log"
	"github.com/go-kratos/kratos/v2/middleware/tracing"
	"go.opentelemetry.io/otel/trace"

	"github.com/mpauth/mpauth/internal/observability"
)

type stringer struct{}

func (stringer) String() string { return "from String()" }

func TestJSONLogLinesAreOneObjectEach(t *testing.T) {
	var buf bytes.Buffer
	l := observability.NewLogger("json", &buf)
	h := log.NewHelper(l)
	h.Infow("msg", "hello <world> & \"quotes\"\nnewline", "n", 42, "ok", true, "err", errors.New("boom"),
		"d", 1500*time.Millisecond, "s", stringer{}, "nan", math.NaN(), "list", []string{"a", "b"})
	h.Warnw("msg", "second", "trace_id", "", "span_id", "")
	_ = l.Log(log.LevelError, "odd")

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	want := map[string]any{
		"level": "INFO", "msg": "hello <world> & \"quotes\"\nnewline", "n": 42.0, "ok": true, "err": "boom",
		"d": "1.5s", "s": "from String()", "nan": "NaN",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %#v, want %#v", k, first[k], v)
		}
	}
	if l, _ := first["list"].([]any); len(l) != 2 {
		t.Errorf("list = %#v, want a JSON array", first["list"])
	}
	if !strings.HasPrefix(lines[0], `{"level":"INFO","msg":`) {
		t.Errorf("keys are not in the logged order: %s", lines[0])
	}
	if strings.Contains(lines[0], `\u003c`) {
		t.Errorf("HTML-escaped: %s", lines[0])
	}

	var second map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if _, ok := second["trace_id"]; ok {
		t.Errorf("an empty trace_id is logged: %s", lines[1])
	}
	if second["level"] != "WARN" {
		t.Errorf("level = %v", second["level"])
	}
	var third map[string]any
	if err := json.Unmarshal([]byte(lines[2]), &third); err != nil {
		t.Fatalf("an unpaired key breaks the line: %v: %s", err, lines[2])
	}
	if third["odd"] != "KEYVALS UNPAIRED" {
		t.Errorf("unpaired key: %s", lines[2])
	}
}

func TestLogLinesInATraceCarryItsIDs(t *testing.T) {
	var buf bytes.Buffer
	l := log.With(observability.NewLogger("", &buf), "trace_id", tracing.TraceID(), "span_id", tracing.SpanID())
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.NewHelper(l).WithContext(ctx).Info("in a request")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not JSON: %v: %s", err, buf.String())
	}
	if line["trace_id"] != tid.String() || line["span_id"] != sid.String() {
		t.Fatalf("line %v lacks the trace", line)
	}
}

func TestTextFormatIsKratosKeyValue(t *testing.T) {
	var buf bytes.Buffer
	log.NewHelper(observability.NewLogger("text", &buf)).Infow("msg", "hi", "trace_id", "", "n", 1)
	if got := buf.String(); got != "INFO msg=hi n=1\n" {
		t.Fatalf("text line %q", got)
	}
}

func TestJSONLoggerIsSafeForConcurrentUse(t *testing.T) {
	var buf bytes.Buffer
	l := observability.NewJSONLogger(&buf)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_ = l.Log(log.LevelInfo, "msg", strings.Repeat("x", 100), "i", i, "j", j)
			}
		}(i)
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for _, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Fatalf("interleaved line: %s", line)
		}
	}
}

// The JSON logger writes plain strings and integers itself (the encoder
// costs an allocation a value); its output must stay what encoding/json,
// without HTML escaping, writes.
func FuzzJSONLoggerWritesValuesAsEncodingJSON(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\"", `back\slash`, "new\nline", "tab\t", "\x00\x1f", "<html>&", "é", "\u2028", "\xff", "caf\xc3"} {
		f.Add(s, int64(-42), true)
	}
	f.Fuzz(func(t *testing.T, s string, n int64, b bool) {
		var buf bytes.Buffer
		if err := observability.NewJSONLogger(&buf).Log(log.LevelInfo, s, s, "int", int(n), "int32", int32(n), "int64", n, "bool", b); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		want.WriteString(`{"level":"INFO"`)
		for _, kv := range [][2]any{{s, s}, {"int", int(n)}, {"int32", int32(n)}, {"int64", n}, {"bool", b}} {
			want.WriteByte(',')
			_ = enc.Encode(kv[0])
			want.Truncate(want.Len() - 1)
			want.WriteByte(':')
			_ = enc.Encode(kv[1])
			want.Truncate(want.Len() - 1)
		}
		want.WriteString("}\n")
		if buf.String() != want.String() {
			t.Fatalf("logged %q\nencoding/json %q", buf.String(), want.String())
		}
	})
}
