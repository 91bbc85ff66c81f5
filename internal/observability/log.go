package observability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/go-kratos/kratos/v2/log"
)

// NewLogger returns a kratos logger writing to w in format: "json" (or
// ""; one JSON object per line) or "text" (kratos's key=value lines).
func NewLogger(format string, w io.Writer) log.Logger {
	if format == "text" {
		return textLogger{log.NewStdLogger(w)}
	}
	return NewJSONLogger(w)
}

// textLogger leaves out an empty trace_id or span_id, as the JSON logger.
type textLogger struct{ next log.Logger }

func (l textLogger) Log(level log.Level, keyvals ...any) error {
	kept := keyvals[:0:0]
	for i := 0; i+1 < len(keyvals); i += 2 {
		if s, ok := keyvals[i+1].(string); ok && s == "" && omitEmpty[fmt.Sprint(keyvals[i])] {
			continue
		}
		kept = append(kept, keyvals[i], keyvals[i+1])
	}
	if len(keyvals)%2 != 0 {
		kept = append(kept, keyvals[len(keyvals)-1])
	}
	return l.next.Log(level, kept...)
}

// NewJSONLogger returns a kratos logger that writes each entry as one JSON
// object on one line: {"level":"INFO","key":value,...}, keys in the order
// logged. Values are encoded as JSON (errors and Stringers as their text);
// an empty trace_id or span_id (a line outside any request) is left out.
func NewJSONLogger(w io.Writer) log.Logger {
	return &jsonLogger{w: w, pool: &sync.Pool{New: func() any { return new(bytes.Buffer) }}}
}

type jsonLogger struct {
	mu   sync.Mutex
	w    io.Writer
	pool *sync.Pool
}

// omitEmpty are keys left out when their value is "".
var omitEmpty = map[string]bool{"trace_id": true, "span_id": true}

func (l *jsonLogger) Log(level log.Level, keyvals ...any) error {
	if len(keyvals)%2 != 0 {
		keyvals = append(keyvals, "KEYVALS UNPAIRED")
	}
	buf := l.pool.Get().(*bytes.Buffer)
	defer func() {
		buf.Reset()
		l.pool.Put(buf)
	}()
	enc := newEncoder(buf)
	buf.WriteString(`{"level":`)
	writeJSON(buf, enc, level.String())
	for i := 0; i < len(keyvals); i += 2 {
		k := fmt.Sprint(keyvals[i])
		if s, ok := keyvals[i+1].(string); ok && s == "" && omitEmpty[k] {
			continue
		}
		buf.WriteByte(',')
		writeJSON(buf, enc, k)
		buf.WriteByte(':')
		writeJSON(buf, enc, jsonValue(keyvals[i+1]))
	}
	buf.WriteString("}\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(buf.Bytes())
	return err
}

// jsonValue is what v is logged as: errors and Stringers as their text.
func jsonValue(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return v
	case error:
		return x.Error()
	case fmt.Stringer:
		return x.String()
	}
	return v
}

// newEncoder returns the encoder writeJSON appends to buf with: no HTML
// escaping. One per line, not per value.
func newEncoder(buf *bytes.Buffer) *json.Encoder {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	return enc
}

// writeJSON appends v as JSON (as its fmt text if JSON cannot encode it)
// through enc, which writes to buf.
func writeJSON(buf *bytes.Buffer, enc *json.Encoder, v any) {
	if err := enc.Encode(v); err != nil {
		_ = enc.Encode(fmt.Sprint(v))
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
}
