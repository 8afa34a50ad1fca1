package view

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/httpapi"
)

// readTimeout bounds the reading of a history page, or of a past value,
// from the events log: a log that does not answer gets 503.
const readTimeout = 10 * time.Second

// historyEntry is one event of GET /values/{id}/history: a version
// (ValueCreated, ValueUpdated) or, with ?include=rejected, a rejected
// command (CommandRejected), which changed nothing and has no version.
type historyEntry struct {
	Version   int64            `json:"version,omitempty"`
	EventID   uuid.UUID        `json:"event_id"`
	CommandID uuid.UUID        `json:"command_id"`
	Action    domain.Action    `json:"action"`
	Operation domain.Operation `json:"operation,omitempty"`
	Operand   *number          `json:"operand,omitempty"`
	// Before is the value before a version (null for the creation); Value
	// the value after it, or for a rejection the value it left unchanged.
	Before    *number       `json:"before"`
	Value     number        `json:"value"`
	Reason    domain.Reason `json:"reason,omitempty"`
	Message   string        `json:"message,omitempty"`
	Timestamp time.Time     `json:"timestamp"`
	// Position is where the event is in the events log, as the events
	// stream's ids say it.
	Position string `json:"position"`
}

// historyPage is the JSON of GET /values/{id}/history.
type historyPage struct {
	ValueID uuid.UUID      `json:"value_id"`
	Events  []historyEntry `json:"events"`
	// Next is the URL of the next page (also in the Link header), absent
	// on the last page.
	Next string `json:"next,omitempty"`
}

// historyQuery is what a history request asks for.
type historyQuery struct {
	limit      int
	rejections bool // ?include=rejected
	// The page starts after version afterVersion or, when byPosition is
	// set, after the record at afterPosition (what a page that ends on a
	// rejection gives as its next cursor).
	afterVersion   int
	byPosition     bool
	afterPartition int32
	afterOffset    int64
}

func parseHistoryQuery(q url.Values) (historyQuery, error) {
	var hq historyQuery
	var err error
	if hq.limit, err = parseLimit(q); err != nil {
		return hq, err
	}
	switch include := q.Get("include"); {
	case !q.Has("include"):
	case include == "rejected":
		hq.rejections = true
	default:
		return hq, fmt.Errorf("include=%q: the only thing to include is \"rejected\"", include)
	}
	if q.Has("after_version") && q.Has("after_position") {
		return hq, errors.New("give after_version or after_position, not both")
	}
	if q.Has("after_version") {
		if hq.afterVersion, err = parseCount(q, "after_version", 0); err != nil {
			return hq, err
		}
	}
	if q.Has("after_position") {
		hq.byPosition = true
		if hq.afterPartition, hq.afterOffset, err = parsePosition(q.Get("after_position")); err != nil {
			return hq, fmt.Errorf("after_position=%w", err)
		}
	}
	return hq, nil
}

// pagePlan is a page of a history as the index knows it: which events to
// read, in log order.
type pagePlan struct {
	partition int32
	// base is the version before the page's first entry (0: none) and
	// baseOffset its event's offset: it is read too, for the value then.
	base       int
	baseOffset int64
	entries    []planned
	more       bool // whether entries follow the page
}

// planned is one entry of a page: a version, or a rejection (version 0).
type planned struct {
	offset  int64
	version int
}

// plan returns the page of a value's history, with these versions and
// rejections, that hq asks for. Its errors are the query's (a cursor in
// another partition) or the index's (a block that cannot be read: see
// isIndexError).
func plan(versions, rejected lookup, hq historyQuery) (pagePlan, error) {
	p := pagePlan{partition: versions.partition}
	after := int64(-1) // the page is what lies after this offset
	switch {
	case hq.byPosition && hq.afterPartition != p.partition:
		return p, fmt.Errorf("after_position=%s: the value's events are in partition %d", formatPosition(hq.afterPartition, hq.afterOffset), p.partition)
	case hq.byPosition:
		after = hq.afterOffset
	case hq.afterVersion > versions.len():
		return p, nil // past the last version: an empty page
	case hq.afterVersion > 0:
		pt, err := versions.at(hq.afterVersion - 1)
		if err != nil {
			return p, err
		}
		after = pt.offset
	}
	first, err := versions.after(after)
	if err != nil {
		return p, err
	}
	if first > 0 {
		pt, err := versions.at(first - 1)
		if err != nil {
			return p, err
		}
		p.base, p.baseOffset = first, pt.offset
	}
	// Up to limit+1 of each kind, merged in log order: the one after the
	// limit says whether there is more.
	var vs, rs []planned
	err = versions.from(first, func(i int, pt point) bool {
		vs = append(vs, planned{offset: pt.offset, version: i + 1})
		return len(vs) <= hq.limit
	})
	if err != nil {
		return p, err
	}
	if hq.rejections {
		firstRejection, err := rejected.after(after)
		if err == nil {
			err = rejected.from(firstRejection, func(_ int, pt point) bool {
				rs = append(rs, planned{offset: pt.offset})
				return len(rs) <= hq.limit
			})
		}
		if err != nil {
			return p, err
		}
	}
	for len(p.entries) <= hq.limit && (len(vs) > 0 || len(rs) > 0) {
		if len(rs) == 0 || len(vs) > 0 && vs[0].offset < rs[0].offset {
			p.entries, vs = append(p.entries, vs[0]), vs[1:]
		} else {
			p.entries, rs = append(p.entries, rs[0]), rs[1:]
		}
	}
	if len(p.entries) > hq.limit {
		p.entries, p.more = p.entries[:hq.limit], true
	}
	return p, nil
}

// nextURL is the URL of the page after p, which ends with entry last.
func (hq historyQuery) nextURL(id uuid.UUID, p pagePlan) string {
	last := p.entries[len(p.entries)-1]
	q := url.Values{"limit": {strconv.Itoa(hq.limit)}}
	if hq.rejections {
		q.Set("include", "rejected")
	}
	if last.version > 0 {
		q.Set("after_version", strconv.Itoa(last.version))
	} else {
		q.Set("after_position", formatPosition(p.partition, last.offset))
	}
	return "/values/" + id.String() + "/history?" + q.Encode()
}

// getHistory answers GET /values/{id}/history: the value's events, oldest
// first, read from the events log at the positions the index keeps.
func (v *View) getHistory(w http.ResponseWriter, r *http.Request) {
	id, ok := httpapi.ParseID(w, chi.URLParam(r, "id"), "value id")
	if !ok {
		return
	}
	hq, err := parseHistoryQuery(r.URL.Query())
	if err != nil {
		queryError(w, err)
		return
	}
	if v.replaying(w) {
		return
	}
	v.mu.RLock()
	versions, rejected, found := v.index.history(v.state, id)
	v.mu.RUnlock()
	if noHistory(w, id, found, versions.partition) {
		return
	}
	p, err := plan(versions, rejected, hq)
	switch {
	case isIndexError(err):
		v.readError(w, id, err)
		return
	case err != nil:
		queryError(w, err)
		return
	}

	page := historyPage{ValueID: id, Events: make([]historyEntry, 0, len(p.entries))}
	if len(p.entries) > 0 {
		offsets := make([]int64, 0, len(p.entries)+1)
		if p.base > 0 {
			offsets = append(offsets, p.baseOffset)
		}
		for _, e := range p.entries {
			offsets = append(offsets, e.offset)
		}
		events, err := v.readEvents(r.Context(), id, p.partition, offsets)
		if err != nil {
			v.readError(w, id, err)
			return
		}
		var before *number
		if p.base > 0 {
			if base := events[0].Action; base != domain.ValueCreated && base != domain.ValueUpdated {
				v.readError(w, id, fmt.Errorf("%w: a %s event at version %d", errUnexpected, base, p.base))
				return
			}
			value := valueAfter(events[0])
			before, events = &value, events[1:]
		}
		for i, e := range events {
			entry, err := historyEntryOf(e, p.partition, p.entries[i], before)
			if err != nil {
				v.readError(w, id, fmt.Errorf("%w at position %s: %w", errUnexpected, formatPosition(p.partition, p.entries[i].offset), err))
				return
			}
			page.Events = append(page.Events, entry)
			if entry.Version > 0 {
				before = &entry.Value
			}
		}
	}
	if p.more {
		page.Next = hq.nextURL(id, p)
		nextLink(w, page.Next)
	}
	httpapi.WriteJSON(w, http.StatusOK, page)
}

// historyEntryOf is the entry of event e, planned as pe in partition, with
// the value before it (nil before the creation).
func historyEntryOf(e domain.Event, partition int32, pe planned, before *number) (historyEntry, error) {
	entry := historyEntry{
		Version: int64(pe.version), EventID: e.ID, CommandID: e.ParentID, Action: e.Action,
		Timestamp: e.Timestamp, Before: before, Position: formatPosition(partition, pe.offset),
	}
	switch {
	case pe.version == 1 && e.Action == domain.ValueCreated:
		entry.Value = e.Value
	case pe.version > 1 && e.Action == domain.ValueUpdated && before != nil:
		operand := e.Value
		entry.Operation, entry.Operand, entry.Value = e.Operation, &operand, e.Result
	case pe.version == 0 && e.Action == domain.CommandRejected && before != nil:
		entry.Before, entry.Value = nil, *before
		entry.Reason, entry.Message = e.Reason, e.Message
	default:
		return entry, fmt.Errorf("a %s event where the view has version %d", e.Action, pe.version)
	}
	return entry, nil
}

// valueAfter is the value that a ValueCreated or ValueUpdated event leaves.
func valueAfter(e domain.Event) number {
	if e.Action == domain.ValueUpdated {
		return e.Result
	}
	return e.Value
}

// errUnexpected marks an event that the log holds at a position the view
// indexed but that is not what the view indexed there.
var errUnexpected = errors.New("the events log holds another event than the view indexed")

// readEvents reads the events of value id at the given offsets of one
// partition (increasing), within readTimeout.
func (v *View) readEvents(ctx context.Context, id uuid.UUID, partition int32, offsets []int64) ([]domain.Event, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	records, err := v.log.Read(ctx, v.topic, partition, offsets)
	if err != nil {
		return nil, err
	}
	events := make([]domain.Event, len(records))
	for i, rec := range records {
		e, err := domain.DecodeEvent(rec.Value)
		if err != nil || e.ValueID != id {
			return nil, fmt.Errorf("%w at position %s: %v (value %s)", errUnexpected, formatPosition(partition, rec.Offset), err, e.ValueID)
		}
		events[i] = e
	}
	return events, nil
}

// isIndexError reports whether err says that the view's own history index
// could not be read (a stored block missing or damaged).
func isIndexError(err error) bool {
	var be *blockError
	return errors.As(err, &be) || errors.Is(err, errBadBlock)
}

// readError answers a history or a past value that could not be read: 503
// when the log did not answer in time (or is closing), 500 when it does not
// hold what the view indexed, or when the view's history index cannot be
// read (a block of the history file damaged): never a wrong answer.
func (v *View) readError(w http.ResponseWriter, id uuid.UUID, err error) {
	if isIndexError(err) {
		event := v.logger.Error().Err(err).Stringer("value_id", id)
		if be := (*blockError)(nil); errors.As(err, &be) {
			event = event.Int64("history_file_position", be.pos).Uint32("block_length", be.length)
		}
		event.Msg("the view's history index cannot be read")
		httpapi.Error(w, httpapi.Internal, fmt.Sprintf("the history index of value %s cannot be read: %v", id, err))
		return
	}
	if errors.Is(err, eventlog.ErrNoRecord) || errors.Is(err, errUnexpected) {
		v.logger.Error().Err(err).Stringer("value_id", id).Msg("the events log does not hold an event the view indexed")
		httpapi.Error(w, httpapi.Internal, fmt.Sprintf("the events log does not hold the events of value %s where the view found them: %v", id, err))
		return
	}
	v.logger.Warn().Err(err).Stringer("value_id", id).Msg("cannot read events from the log")
	httpapi.Error(w, httpapi.HistoryUnavailable, fmt.Sprintf("the events log could not be read: %v", err))
}

// noHistory answers for a value whose history cannot be read, and reports
// whether it did: 404 for a value that does not exist, 500 for one whose
// events are in several partitions (see splitPartition).
func noHistory(w http.ResponseWriter, id uuid.UUID, found bool, partition int32) bool {
	switch {
	case !found:
		httpapi.Error(w, httpapi.ValueNotFound, fmt.Sprintf("value %s does not exist", id))
	case partition == splitPartition:
		httpapi.Error(w, httpapi.Internal, fmt.Sprintf("the events of value %s are in several partitions of the events log (a writer that does not key them by value id): its history cannot be read", id))
	default:
		return false
	}
	return true
}
