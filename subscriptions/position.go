package subscriptions

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"calculator/eventlog"
)

// A cursor is where a stream is in the events topic: for each partition, the
// offset of the next record to send (eventlog.Offsets; a missing partition
// means 0).
//
// On the wire (SSE ids, Last-Event-ID, ?from=) a position is written as
// position.id writes it: "42" is offset 42 of partition 0, "1:42" is offset
// 42 of partition 1. When a topic has several partitions the id of a message
// of the events stream lists every partition the stream has passed,
// "0:41,1:42", so that resuming from it is exact in all of them.

// position is where one record is in a topic.
type position struct {
	partition int32
	offset    int64
}

// positionOf returns the position of rec.
func positionOf(rec *eventlog.Record) position { return position{rec.Partition, rec.Offset} }

// id returns the SSE id of the message that carries the record at p: "42"
// for partition 0, "1:42" for the others.
func (p position) id() string {
	if p.partition == 0 {
		return strconv.FormatInt(p.offset, 10)
	}
	return strconv.Itoa(int(p.partition)) + ":" + strconv.FormatInt(p.offset, 10)
}

// formatID returns the SSE id of the message that leaves the stream at
// cursor: the offset of the last record sent in each partition.
func formatID(cursor eventlog.Offsets) string {
	if len(cursor) == 1 {
		if next, ok := cursor[0]; ok {
			return strconv.FormatInt(next-1, 10)
		}
	}
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(cursor)) {
		if cursor[p] == 0 {
			continue // nothing passed in this partition yet: it starts at 0
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
		b.WriteByte(':')
		b.WriteString(strconv.FormatInt(cursor[p]-1, 10))
	}
	if b.Len() == 0 {
		return "-1" // nothing passed in any partition: resume from the start
	}
	return b.String()
}

// parsePositions parses "42", "1:42" or "0:41,1:42" into a position per
// partition. A bare number is a position in partition 0. An offset below
// least is an error (-1 stands for "before the first record").
func parsePositions(s string, least int64) (eventlog.Offsets, error) {
	if s == "" {
		return nil, fmt.Errorf("empty position")
	}
	out := eventlog.Offsets{}
	for part := range strings.SplitSeq(s, ",") {
		p, o := "0", part
		if i := strings.IndexByte(part, ':'); i >= 0 {
			p, o = part[:i], part[i+1:]
		}
		partition, err1 := strconv.ParseInt(p, 10, 32)
		offset, err2 := strconv.ParseInt(o, 10, 64)
		if err1 != nil || err2 != nil || partition < 0 || offset < -1 {
			return nil, fmt.Errorf("%q is not a log position (want an offset like 42, or partition:offset like 1:42)", s)
		}
		if offset < least {
			return nil, fmt.Errorf("%q: an offset is at least %d", s, least)
		}
		if _, dup := out[int32(partition)]; dup {
			return nil, fmt.Errorf("%q names partition %d twice", s, partition)
		}
		out[int32(partition)] = offset
	}
	return out, nil
}

// cursorAfter is the cursor that resumes exactly after the message with the
// given SSE id (a Last-Event-ID).
func cursorAfter(id string) (eventlog.Offsets, error) {
	positions, err := parsePositions(id, -1)
	if err != nil {
		return nil, err
	}
	for p, o := range positions {
		positions[p] = o + 1
	}
	return positions, nil
}

// cursorFrom is the cursor that starts at the given position (?from=),
// inclusive.
func cursorFrom(from string) (eventlog.Offsets, error) {
	return parsePositions(from, 0)
}

// covers reports whether cursor is at or past target in every partition of
// target.
func covers(cursor, target eventlog.Offsets) bool {
	for p, o := range target {
		if cursor[p] < o {
			return false
		}
	}
	return true
}
