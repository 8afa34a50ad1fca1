package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"calculator/domain"
)

// DecodeJSON decodes a request's JSON object strictly into v: no unknown
// fields, no trailing data, at most maxBytes. It writes the problem response
// and returns false when the body is not acceptable.
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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("unexpected data after the JSON object")
	}
	if err == nil {
		if _, terr := dec.Token(); !errors.Is(terr, io.EOF) {
			err = errors.New("unexpected data after the JSON object")
		}
	}
	if err == nil {
		return true
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var numErr *domain.NumberError
	switch {
	case errors.As(err, &tooLarge):
		Error(w, BodyTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBytes))
	case errors.As(err, &numErr): // a number a Decimal cannot hold: never rounded
		Error(w, InvalidBody, numErr.Error())
	case errors.As(err, &typeErr):
		Error(w, InvalidBody, fmt.Sprintf("%q must be a %s, not %s", typeErr.Field, typeName(typeErr.Type.String()), typeErr.Value))
	case errors.Is(err, io.EOF):
		Error(w, InvalidBody, "the body is empty; send a JSON object")
	default:
		Error(w, InvalidBody, "malformed JSON: "+err.Error())
	}
	return false
}

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
