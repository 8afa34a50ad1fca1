package subscriptions

import (
	"maps"
	"math"
	"slices"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/snapshot"
)

// The Hub in a snapshot (FreezeSnapshot's encoding writes it,
// DecodeSnapshot reads it back): the statuses and how far the Hub had taken each source in.
//
//	n        count of statuses, oldest first (the order the ring evicts)
//	evicted  uvarint
//	n × status:
//	  command, value       16 bytes each
//	  flags                uvarint (1 byte): flagOutcome, flagRejected,
//	                       flagExists, flagForeignID
//	  when flagOutcome:    version, event partition and offset (varints)
//	  when flagRejected:   reason, message (strings)
//	  when flagForeignID:  event id, 16 bytes
//	commandsNext, outcomesNext, eventsNext  (Offsets)
//
// An accepted command takes 33 bytes, a succeeded one about 38. The value
// after each outcome is not in it, as it is not in the table: the view's
// part of the snapshot has the values.

// minStatusSize is the size of the smallest status: an accepted command.
const minStatusSize = 16 + 16 + 1

// encodedFlags are the flags a status has in a snapshot; flagWide is how
// the table holds what the snapshot writes in full.
const encodedFlags = flagOutcome | flagRejected | flagExists | flagForeignID

// FreezeSnapshot copies the Hub's statuses and positions as they are at
// this instant, under its lock, and returns what encodes the copy: the
// encoding may then run on another goroutine while the Hub goes on. The
// view calls it from its own goroutine, right after handing a batch to
// Apply: eventsNext is then the view's position.
func (h *Hub) FreezeSnapshot() (encode func(e *snapshot.Encoder)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.statuses
	frozen := &statusTable{slots: slices.Clone(t.slots), oldest: t.oldest, evicted: t.evicted, extras: maps.Clone(t.extras)}
	positions := []eventlog.Offsets{maps.Clone(h.commandsNext), maps.Clone(h.outcomesNext), maps.Clone(h.eventsNext)}
	return func(e *snapshot.Encoder) { frozen.encode(e, positions) }
}

// encode writes the statuses, oldest first, then the positions.
func (t *statusTable) encode(e *snapshot.Encoder, positions []eventlog.Offsets) {
	e.Int(len(t.slots))
	e.Uvarint(uint64(t.evicted))
	for k := range t.slots {
		// Until the table is full, oldest is 0 and the slots are in order.
		s := &t.slots[(t.oldest+k)%len(t.slots)]
		e.Raw(s.command[:])
		e.Raw(s.value[:])
		flags := s.flags()
		e.Uvarint(uint64(flags & encodedFlags))
		var x extra
		if s.hasExtra() {
			x = t.extras[s.command]
		}
		if flags&flagOutcome != 0 {
			version, at := s.outcome(&x)
			e.Varint(version)
			e.Varint(int64(at.partition))
			e.Varint(at.offset)
		}
		if flags&flagRejected != 0 {
			e.String(string(x.reason))
			e.String(x.message)
		}
		if flags&flagForeignID != 0 {
			e.Raw(x.eventID[:])
		}
	}
	for _, p := range positions {
		e.Offsets(p)
	}
}

// DecodeSnapshot reads what FreezeSnapshot's encoding wrote, and returns
// install, which replaces the Hub's statuses and positions with it; call it
// before Run. A snapshot of more statuses than the Hub's Capacity keeps the
// most recent ones (the others count as evicted). Nothing changes until
// install is called, and on an error (wrapping snapshot.ErrCorrupt) there is
// none. It reads exactly what was written, and does not require d to end
// there.
func (h *Hub) DecodeSnapshot(d *snapshot.Decoder) (install func(), err error) {
	t := newStatusTable(h.opt.Capacity)
	n := d.Int(minStatusSize)
	evicted := d.Uvarint()
	if evicted > math.MaxInt64 {
		d.Fail("%d statuses evicted", evicted)
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	dropped := max(0, n-t.capacity)
	t.evicted = int64(evicted) + int64(dropped)
	t.slots = make([]slot, n-dropped)
	var scratch slot
	for k := range n {
		s, x := &scratch, extra{}
		if k >= dropped {
			s = &t.slots[k-dropped]
		}
		if !decodeStatus(d, s, &x) {
			return nil, d.Err()
		}
		if k < dropped {
			continue
		}
		if s.hasExtra() {
			t.extras[s.command] = x
		}
	}
	if i, ok := t.index.BuildDistinct(len(t.slots), len(t.slots), slotIDs{t.slots}); !ok {
		d.Fail("command %s has two statuses", uuid.UUID(t.slots[i].command))
		return nil, d.Err()
	}
	commandsNext, outcomesNext, eventsNext := d.Offsets(), d.Offsets(), d.Offsets()
	if d.Err() != nil {
		return nil, d.Err()
	}

	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.statuses = t
		h.commandsNext, h.outcomesNext, h.eventsNext = commandsNext, outcomesNext, eventsNext
	}, nil
}

// decodeStatus reads one status into s and x (its extra, when it has
// one), and reports whether it made sense.
func decodeStatus(d *snapshot.Decoder, s *slot, x *extra) bool {
	*s = slot{}
	copy(s.command[:], d.Raw(16))
	copy(s.value[:], d.Raw(16))
	f := d.Uvarint()
	switch {
	case d.Err() != nil:
		return false
	case f&^uint64(encodedFlags) != 0,
		f&uint64(flagOutcome) == 0 && f != 0: // an accepted command has nothing more
		d.Fail("command %s: flags %#x", uuid.UUID(s.command), f)
		return false
	}
	flags := uint8(f)
	if flags&flagOutcome == 0 {
		return true
	}
	version, partition, offset := d.Varint(), d.Varint(), d.Varint()
	if version < 0 || flags&flagExists != 0 && version == 0 || partition < 0 || partition > math.MaxInt32 || offset < 0 {
		d.Fail("command %s: version %d at %d:%d", uuid.UUID(s.command), version, partition, offset)
		return false
	}
	if flags&flagRejected != 0 {
		x.reason, x.message = domain.Reason(d.String()), d.String()
	}
	if flags&flagForeignID != 0 {
		copy(x.eventID[:], d.Raw(16))
	}
	s.setOutcome(flags, version, position{int32(partition), offset}, x)
	return d.Err() == nil
}
