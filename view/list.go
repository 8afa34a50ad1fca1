package view

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/google/uuid"

	"calculator/httpapi"
)

// valuesPage is the JSON of GET /values.
type valuesPage struct {
	Values []valueResponse `json:"values"`
	// Next is the URL of the next page (also in the Link header), absent
	// on the last page.
	Next string `json:"next,omitempty"`
}

// listValues answers GET /values?limit=&after=: the values in order of
// their ids, from the first above ?after= (a value id, which need not
// exist), at most ?limit= of them.
func (v *View) listValues(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := parseLimit(q)
	if err != nil {
		queryError(w, err)
		return
	}
	var after *uuid.UUID
	if q.Has("after") {
		id, err := uuid.Parse(q.Get("after"))
		if err != nil || len(q.Get("after")) != 36 { // the canonical form only, as for path ids
			queryError(w, fmt.Errorf("after=%q: want a value id (a UUID in its canonical form), the last of the previous page", q.Get("after")))
			return
		}
		after = &id
	}
	if v.replaying(w) {
		return
	}
	v.mu.RLock()
	ids := v.index.ids.page(after, limit+1) // one more tells whether a next page exists
	page := valuesPage{Values: make([]valueResponse, 0, min(len(ids), limit))}
	for _, id := range ids[:min(len(ids), limit)] {
		value, _ := v.state.Get(id)
		page.Values = append(page.Values, valueResponse{ValueID: id, Value: value.Value, Version: value.Version})
	}
	v.mu.RUnlock()
	if len(ids) > limit {
		last := page.Values[len(page.Values)-1].ValueID
		page.Next = "/values?" + url.Values{"after": {last.String()}, "limit": {strconv.Itoa(limit)}}.Encode()
		nextLink(w, page.Next)
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}
