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
//	  flags                uvarint (1 byte)
//	  when flagOutcome:    result (hi, lo: 8 bytes each), version,
//	                       event partition and offset (varints)
//	  when flagExtra:      reason, message (strings)
//	  when flagForeignID:  event id, 16 bytes
//	commandsNext, outcomesNext, eventsNext  (Offsets)
//
// An accepted command takes 33 bytes, a succeeded one about 55.

// minStatusSize is the size of the smallest status: an accepted command.
const minStatusSize = 16 + 16 + 1

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
		e.Uvarint(uint64(s.flags))
		if s.flags&flagOutcome != 0 {
			hi, lo := s.result.Bits()
			e.Uint64(hi)
			e.Uint64(lo)
			e.Varint(s.version)
			e.Varint(int64(s.eventPartition))
			e.Varint(s.eventOffset)
		}
		if s.flags&flagExtra != 0 {
			x := t.extras[s.command]
			e.String(string(x.reason))
			e.String(x.message)
			if s.flags&flagForeignID != 0 {
				e.Raw(x.eventID[:])
			}
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
	t.index = make(map[[16]byte]uint32, len(t.slots))
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
		if _, twice := t.index[s.command]; twice {
			d.Fail("command %s has two statuses", uuid.UUID(s.command))
			return nil, d.Err()
		}
		t.index[s.command] = uint32(k - dropped)
		if s.flags&flagExtra != 0 {
			t.extras[s.command] = x
		}
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

// decodeStatus reads one status into s and x (its extra, when
// flagExtra), and reports whether it made sense.
func decodeStatus(d *snapshot.Decoder, s *slot, x *extra) bool {
	*s = slot{}
	copy(s.command[:], d.Raw(16))
	copy(s.value[:], d.Raw(16))
	const known = flagOutcome | flagRejected | flagExists | flagExtra | flagForeignID
	f := d.Uvarint()
	hasExtra, needsExtra := f&uint64(flagExtra) != 0, f&uint64(flagRejected|flagForeignID) != 0
	switch {
	case d.Err() != nil:
		return false
	case f&^uint64(known) != 0,
		f&uint64(flagOutcome) == 0 && f != 0, // an accepted command has nothing more
		hasExtra != needsExtra:
		d.Fail("command %s: flags %#x", uuid.UUID(s.command), f)
		return false
	}
	s.flags = uint8(f)
	if s.flags&flagOutcome != 0 {
		hi, lo := d.Uint64(), d.Uint64()
		result, err := domain.DecimalFromBits(hi, lo)
		if err != nil {
			d.Fail("command %s: %v", uuid.UUID(s.command), err)
		}
		version, partition, offset := d.Varint(), d.Varint(), d.Varint()
		if version < 0 || partition < 0 || partition > math.MaxInt32 || offset < 0 {
			d.Fail("command %s: version %d at %d:%d", uuid.UUID(s.command), version, partition, offset)
		}
		s.result, s.version, s.eventPartition, s.eventOffset = result, version, int32(partition), offset
	}
	if hasExtra {
		x.reason, x.message = domain.Reason(d.String()), d.String()
		if s.flags&flagForeignID != 0 {
			copy(x.eventID[:], d.Raw(16))
		}
	}
	return d.Err() == nil
}
