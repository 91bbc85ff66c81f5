package observability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
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
	writeString(buf, enc, level.String())
	for i := 0; i < len(keyvals); i += 2 {
		k, ok := keyvals[i].(string)
		if !ok {
			k = fmt.Sprint(keyvals[i])
		}
		if s, ok := keyvals[i+1].(string); ok && s == "" && omitEmpty[k] {
			continue
		}
		buf.WriteByte(',')
		writeString(buf, enc, k)
		buf.WriteByte(':')
		writeValue(buf, enc, keyvals[i+1])
	}
	buf.WriteString("}\n")
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(buf.Bytes())
	return err
}

// writeValue appends v as JSON: errors and Stringers as their text. The
// common kinds are appended directly; the encoder (which costs an
// allocation a value) takes the rest.
func writeValue(buf *bytes.Buffer, enc *json.Encoder, v any) {
	switch x := v.(type) {
	case string:
		writeString(buf, enc, x)
	case bool:
		buf.Write(strconv.AppendBool(buf.AvailableBuffer(), x))
	case int:
		buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(x), 10))
	case int32:
		buf.Write(strconv.AppendInt(buf.AvailableBuffer(), int64(x), 10))
	case int64:
		buf.Write(strconv.AppendInt(buf.AvailableBuffer(), x, 10))
	case error:
		writeString(buf, enc, x.Error())
	case fmt.Stringer:
		writeString(buf, enc, x.String())
	default:
		writeJSON(buf, enc, v)
	}
}

// writeString appends s as a JSON string: as it is when encoding/json
// would not escape any of it (printable ASCII but " and \), else through
// the encoder.
func writeString(buf *bytes.Buffer, enc *json.Encoder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			writeJSON(buf, enc, s)
			return
		}
	}
	buf.WriteByte('"')
	buf.WriteString(s)
	buf.WriteByte('"')
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
