package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"calculator/domain"
)

// DecodeJSON decodes a request's JSON object strictly into v, a pointer to
// a struct: every member must be one of v's fields, spelt exactly as its
// json tag (encoding/json alone would take "Value" for "value"), and appear
// once (encoding/json alone would keep the last of two); no trailing data;
// at most maxBytes. It writes the problem response and returns false when
// the body is not acceptable.
//
// Content-Type: application/json (or any +json type) is expected. A request
// without one, or with application/x-www-form-urlencoded (what curl -d sends
// when no type is given), is read as JSON too, because its body is all that
// matters and rejecting curl's default would only get in a user's way. Any
// other type gets 415.
func DecodeJSON(w http.ResponseWriter, r *http.Request, v any, maxBytes int64) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mediaType, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mediaType == "application/json" || strings.HasSuffix(mediaType, "+json") ||
			mediaType == "application/x-www-form-urlencoded") {
			Error(w, UnsupportedMediaType,
				fmt.Sprintf("Content-Type %q is not supported; send application/json", ct))
			return false
		}
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer bodyBuffers.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxBytes)); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			Error(w, BodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBytes))
		} else {
			Error(w, InvalidBody, "the body could not be read: "+err.Error())
		}
		return false
	}
	body := buf.Bytes()
	if len(bytes.TrimSpace(body)) == 0 {
		Error(w, InvalidBody, "the body is empty; send a JSON object")
		return false
	}
	// encoding/json checks the syntax and the types; checkMembers, on the
	// valid JSON that passed, what encoding/json lets by.
	if err := json.Unmarshal(body, v); err != nil {
		var syntaxErr *json.SyntaxError
		var typeErr *json.UnmarshalTypeError
		var numErr *domain.NumberError
		switch {
		case errors.As(err, &numErr): // a number a Decimal cannot hold: never rounded
			Error(w, InvalidBody, numErr.Error())
		case errors.As(err, &syntaxErr) && strings.Contains(syntaxErr.Error(), "after top-level value"):
			Error(w, InvalidBody, "unexpected data after the JSON object")
		case errors.As(err, &typeErr) && typeErr.Field == "":
			Error(w, InvalidBody, fmt.Sprintf("the body must be a JSON object, not %s", typeErr.Value))
		case errors.As(err, &typeErr):
			Error(w, InvalidBody, fmt.Sprintf("%q must be a %s, not %s", typeErr.Field, typeName(typeErr.Type.String()), typeErr.Value))
		default:
			Error(w, InvalidBody, "malformed JSON: "+err.Error())
		}
		return false
	}
	if err := checkMembers(body, fieldsOf(v)); err != nil {
		Error(w, InvalidBody, err.Error())
		return false
	}
	return true
}

// bodyBuffers holds the buffers that request bodies are read into.
// encoding/json copies what it keeps, so a buffer is free again once the
// body is decoded.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func typeName(goType string) string {
	switch strings.TrimPrefix(goType, "*") {
	case "float64":
		return "finite number"
	case "domain.Decimal":
		return "number"
	case "string":
		return "string"
	}
	return "JSON object"
}

// fieldNames caches fieldsOf by type.
var fieldNames sync.Map // reflect.Type → []string

// fieldsOf returns the JSON member names of the struct that v points to,
// as their json tags spell them.
func fieldsOf(v any) []string {
	t := reflect.TypeOf(v)
	if names, ok := fieldNames.Load(t); ok {
		return names.([]string)
	}
	var names []string
	if t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		for f := range t.Elem().Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || !f.IsExported():
			case name == "":
				names = append(names, f.Name)
			default:
				names = append(names, name)
			}
		}
	}
	fieldNames.Store(t, names)
	return names
}

// checkMembers reports the first member of the top-level object of body,
// valid JSON, that is not exactly one of fields, or that comes a second
// time. It looks at the member names only and skips their values; it
// allocates only for a name with escapes.
func checkMembers(body []byte, fields []string) error {
	if len(fields) > 64 {
		return nil // more than the bitmask holds; no request type of the API has that many
	}
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil // not an object: encoding/json has said what it thinks
	}
	var seen uint64
	for i++; ; {
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != '"' {
			return nil // the end of the object ("}")
		}
		end, escaped := stringEnd(body, i)
		name := body[i+1 : end]
		if escaped {
			var s string
			if json.Unmarshal(body[i:end+1], &s) != nil {
				return nil
			}
			name = []byte(s)
		}
		if err := checkMember(name, fields, &seen); err != nil {
			return err
		}
		i = skipSpace(body, end+1) // at ':'
		i = skipValue(body, skipSpace(body, i+1))
		i = skipSpace(body, i)
		if i >= len(body) || body[i] != ',' {
			return nil
		}
		i++
	}
}

// checkMember checks one member name against fields and the names seen
// before it.
func checkMember(name []byte, fields []string, seen *uint64) error {
	for j, f := range fields {
		if string(name) == f {
			if *seen&(1<<j) != 0 {
				return fmt.Errorf("the member %q appears twice", f)
			}
			*seen |= 1 << j
			return nil
		}
	}
	for _, f := range fields {
		if strings.EqualFold(string(name), f) {
			return fmt.Errorf("unknown member %q: member names are case-sensitive (did you mean %q?)", name, f)
		}
	}
	return fmt.Errorf("unknown member %q (the members are %s)", name, quoteList(fields))
}

// quoteList writes names as "a", "b" and "c".
func quoteList(names []string) string {
	var b strings.Builder
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			b.WriteString(" and ")
		default:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", n)
	}
	return b.String()
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote that ends the string starting
// at b[i], and whether the string has escapes.
func stringEnd(b []byte, i int) (end int, escaped bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i, escaped
		}
	}
	return len(b) - 1, escaped
}

// skipValue returns the index just after the value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			i, _ = stringEnd(b, i)
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}
