package commander

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"calculator/httpapi"
)

// expectedVersion returns the version an If-Match header asks the value to
// have, 0 when the request has none. It writes a 400 and returns false when
// the header is not one strong entity tag holding a version as GET
// /values/{id} sends it in its ETag: a quoted decimal number from 1, without
// leading zeros.
//
// Other forms of If-Match are refused, not interpreted: "*" (any current
// representation) adds nothing to a PUT, which already needs the value to
// exist; a weak tag (W/"4") never matches under If-Match's strong
// comparison; and a list of tags would ask for one of several versions,
// which a command cannot carry.
func expectedVersion(w http.ResponseWriter, r *http.Request) (int64, bool) {
	values := r.Header.Values("If-Match")
	switch len(values) {
	case 0:
		return 0, true
	case 1:
		v, err := parseVersionTag(values[0])
		if err != nil {
			httpapi.Error(w, httpapi.InvalidHeader, err.Error())
			return 0, false
		}
		return v, true
	}
	httpapi.Error(w, httpapi.InvalidHeader, fmt.Sprintf("the request has %d If-Match headers; send one, with the ETag of GET /values/{id}", len(values)))
	return 0, false
}

// parseVersionTag parses an If-Match header's value as a version tag ("4").
func parseVersionTag(s string) (int64, error) {
	tag := strings.Trim(s, " \t")
	const want = `; send one version as GET /values/{id} gives it in its ETag, e.g. If-Match: "4"`
	switch {
	case tag == "*":
		return 0, fmt.Errorf(`If-Match: * is not supported (a PUT already needs the value to exist)` + want)
	case strings.HasPrefix(tag, "W/"):
		return 0, fmt.Errorf("If-Match %q is a weak entity tag, which never matches"+want, s)
	case strings.Contains(tag, ","):
		return 0, fmt.Errorf("If-Match %q is a list of entity tags"+want, s)
	case len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"':
		return 0, fmt.Errorf("If-Match %q is not a quoted entity tag"+want, s)
	}
	digits := tag[1 : len(tag)-1]
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v < 1 || digits[0] < '1' || digits[0] > '9' {
		return 0, fmt.Errorf("If-Match %q does not hold a version (a whole number from 1, without sign or leading zeros)"+want, s)
	}
	return v, nil
}
