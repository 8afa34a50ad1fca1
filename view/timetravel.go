package view

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/httpapi"
)

// getPastValue answers GET /values/{id}?version=N (the value right after
// its N-th event) and GET /values/{id}?at=<RFC 3339> (the value after its
// last event stamped at or before that instant). The index finds the
// event's position (for ?at=, by binary search over the timestamps it
// keeps: see trail), and the value is read from that event in the log.
func (v *View) getPastValue(w http.ResponseWriter, r *http.Request, id uuid.UUID, q url.Values) {
	var version int
	var at time.Time
	var err error
	switch {
	case q.Has("version") && q.Has("at"):
		queryError(w, fmt.Errorf("give version or at, not both"))
		return
	case q.Has("version"):
		version, err = parseCount(q, "version", 1)
	default:
		if at, err = time.Parse(time.RFC3339Nano, q.Get("at")); err != nil {
			err = fmt.Errorf("at=%q: want an instant in RFC 3339, like 2006-01-02T15:04:05.999Z", q.Get("at"))
		}
	}
	if err != nil {
		queryError(w, err)
		return
	}

	v.mu.RLock()
	trail, _, found := v.index.history(v.state, id)
	v.mu.RUnlock()
	if noHistory(w, id, found, trail.partition) {
		return
	}
	versions := trail.len()
	if !at.IsZero() {
		version, err = trail.countUntil(at.UnixNano())
	}
	var p point
	if err == nil && version > 0 && version <= versions {
		p, err = trail.at(version - 1)
	}
	if err != nil {
		v.readError(w, id, err)
		return
	}
	switch {
	case version == 0:
		created, err := trail.at(0)
		if err != nil {
			v.readError(w, id, err)
			return
		}
		httpapi.Error(w, httpapi.ValueNotFound, fmt.Sprintf("value %s did not exist at %s: it was created at %s",
			id, at.UTC().Format(time.RFC3339Nano), time.Unix(0, created.time).UTC().Format(time.RFC3339Nano)))
		return
	case version > versions:
		httpapi.Error(w, httpapi.VersionNotFound, fmt.Sprintf("value %s has %d versions: version %d does not exist yet", id, versions, version))
		return
	}
	value, err := v.readVersion(r.Context(), id, trail.partition, p.offset, version)
	if err != nil {
		v.readError(w, id, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, valueResponse{ValueID: id, Value: value, Version: int64(version)})
}

// ValueAt returns the value id right after its version-th event, read from
// that event in the log as GET /values/{id}?version=N does. The
// subscriptions Hub asks it for the value after an older command's outcome.
// It fails when the view does not have that version, or the log cannot be
// read.
func (v *View) ValueAt(ctx context.Context, id uuid.UUID, version int64) (domain.Decimal, error) {
	v.mu.RLock()
	trail, _, found := v.index.history(v.state, id)
	v.mu.RUnlock()
	versions := trail.len()
	switch {
	case !found:
		return domain.Decimal{}, fmt.Errorf("value %s does not exist", id)
	case trail.partition == splitPartition:
		return domain.Decimal{}, fmt.Errorf("the events of value %s are in several partitions of the events log: its history cannot be read", id)
	case version <= 0 || version > int64(versions):
		return domain.Decimal{}, fmt.Errorf("value %s has %d versions, not a version %d", id, versions, version)
	}
	p, err := trail.at(int(version - 1))
	if err != nil {
		return domain.Decimal{}, fmt.Errorf("value %s: %w", id, err)
	}
	return v.readVersion(ctx, id, trail.partition, p.offset, int(version))
}

// readVersion reads the event at offset of partition, which the index
// says is the version-th of value id, and returns the value right after it.
func (v *View) readVersion(ctx context.Context, id uuid.UUID, partition int32, offset int64, version int) (domain.Decimal, error) {
	events, err := v.readEvents(ctx, id, partition, []int64{offset})
	if err != nil {
		return domain.Decimal{}, err
	}
	want := domain.ValueUpdated
	if version == 1 {
		want = domain.ValueCreated
	}
	if events[0].Action != want {
		return domain.Decimal{}, fmt.Errorf("%w: a %s event at version %d", errUnexpected, events[0].Action, version)
	}
	return valueAfter(events[0]), nil
}
