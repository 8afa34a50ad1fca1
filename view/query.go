package view

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"calculator/httpapi"
)

// The pages of GET /values and GET /values/{id}/history.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

// replaying answers 503, as every query of the view does, while the view
// is replaying the events log, and reports whether it did.
func (v *View) replaying(w http.ResponseWriter) bool {
	if v.Ready() {
		return false
	}
	p := v.Progress()
	httpapi.Error(w, httpapi.Replaying, fmt.Sprintf("the view is replaying the events log (at offset %d of %d)", p.Position, p.EndAtStart))
	return true
}

// queryError answers 400 for a query parameter that is not valid.
func queryError(w http.ResponseWriter, err error) {
	httpapi.Error(w, httpapi.InvalidQuery, err.Error())
}

// parseLimit reads ?limit=, defaultLimit when it is absent.
func parseLimit(q url.Values) (int, error) {
	if !q.Has("limit") {
		return defaultLimit, nil
	}
	s := q.Get("limit")
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		return 0, fmt.Errorf("limit=%q: want a whole number from 1 to %d", s, maxLimit)
	}
	return n, nil
}

// parseCount reads a query parameter that counts versions: a whole number
// from min on.
func parseCount(q url.Values, name string, min int) (int, error) {
	s := q.Get(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		return 0, fmt.Errorf("%s=%q: want a whole number from %d on", name, s, min)
	}
	return n, nil
}

// formatPosition writes a record's position as the events stream's ids
// do (subscriptions): "42" is offset 42 of partition 0, "1:42" offset 42 of
// partition 1. ?from= of the events stream takes it as it is.
func formatPosition(partition int32, offset int64) string {
	if partition == 0 {
		return strconv.FormatInt(offset, 10)
	}
	return strconv.Itoa(int(partition)) + ":" + strconv.FormatInt(offset, 10)
}

// parsePosition reads what formatPosition writes.
func parsePosition(s string) (partition int32, offset int64, err error) {
	p, o := "0", s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		p, o = s[:i], s[i+1:]
	}
	pp, err1 := strconv.ParseInt(p, 10, 32)
	oo, err2 := strconv.ParseInt(o, 10, 64)
	if err1 != nil || err2 != nil || pp < 0 || oo < 0 {
		return 0, 0, fmt.Errorf("%q is not a log position (want an offset like 42, or partition:offset like 1:42)", s)
	}
	return int32(pp), oo, nil
}

// nextLink sets the Link header of a page that has a next one.
func nextLink(w http.ResponseWriter, next string) {
	w.Header().Set("Link", "<"+next+`>; rel="next"`)
}
