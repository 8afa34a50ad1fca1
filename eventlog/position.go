package eventlog

import "strconv"

// The headers in which the processor records, on every event it writes, the
// position of the command that the event answers. They make the events
// topic say by itself how far the processor got (its resume point after a
// restart), and let the subscriptions match outcomes to commands. They are
// part of the log's wire format, beside the JSON of SPEC §4.
const (
	HeaderCommandPartition = "command-partition"
	HeaderCommandOffset    = "command-offset"
)

// CommandPositionHeaders returns the headers that record a command's
// position on the event that answers it.
func CommandPositionHeaders(partition int32, offset int64) []Header {
	return []Header{
		{Key: HeaderCommandPartition, Value: strconv.AppendInt(nil, int64(partition), 10)},
		{Key: HeaderCommandOffset, Value: strconv.AppendInt(nil, offset, 10)},
	}
}

// CommandPosition reads back what CommandPositionHeaders wrote; ok is false
// when the headers are missing or malformed (an event from another writer).
func CommandPosition(headers []Header) (partition int32, offset int64, ok bool) {
	rec := Record{Headers: headers}
	ph, ok1 := rec.Header(HeaderCommandPartition)
	oh, ok2 := rec.Header(HeaderCommandOffset)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	p, err1 := strconv.ParseInt(string(ph), 10, 32)
	o, err2 := strconv.ParseInt(string(oh), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return int32(p), o, true
}
