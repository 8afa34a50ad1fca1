package httpapi

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// MaxWait bounds every ?wait= of the API.
const MaxWait = 30 * time.Second

// ParseWait reads ?wait=: a Go duration ("5s", "1500ms") or a number of
// seconds, from 0 to MaxWait; 0 when the parameter is absent. It writes a
// 400 and returns false when the parameter is there but not valid.
func ParseWait(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	s := r.URL.Query().Get("wait")
	if s == "" {
		return 0, true
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		secs, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || math.IsNaN(secs) || math.IsInf(secs, 0) {
			Error(w, InvalidWait, fmt.Sprintf("wait=%q is not a duration (like 5s or 500ms)", s))
			return 0, false
		}
		d = time.Duration(max(-1, min(secs, 2*MaxWait.Seconds())) * float64(time.Second))
	}
	if d < 0 || d > MaxWait {
		Error(w, InvalidWait, fmt.Sprintf("wait=%q is out of range: it must be between 0s and %s", s, MaxWait))
		return 0, false
	}
	return d, true
}
