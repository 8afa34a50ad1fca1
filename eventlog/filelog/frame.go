package filelog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"calculator/eventlog"
)

// On disk a topic is a sequence of frames, nothing else:
//
//	frame  = length (uint32 LE) | checksum (CRC-32C of body, uint32 LE) | body
//	body   = version (1) | uvarint len(key) | key | uvarint count(headers)
//	         | { uvarint len(k) | k | uvarint len(v) | v } | value
//
// A record's offset is its index in the file (0, 1, 2, ...), as in Kafka; the
// in-memory index maps offsets to byte positions.
const (
	frameHeaderSize = 8
	bodyVersion     = 1
	// maxBodySize bounds a record, so that a damaged length field is seen
	// as damage rather than as a huge record.
	maxBodySize = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendFrame appends msg as one frame to b.
func appendFrame(b []byte, msg eventlog.Message) []byte {
	start := len(b)
	b = append(b, make([]byte, frameHeaderSize)...)
	b = append(b, bodyVersion)
	b = binary.AppendUvarint(b, uint64(len(msg.Key)))
	b = append(b, msg.Key...)
	b = binary.AppendUvarint(b, uint64(len(msg.Headers)))
	for _, h := range msg.Headers {
		b = binary.AppendUvarint(b, uint64(len(h.Key)))
		b = append(b, h.Key...)
		b = binary.AppendUvarint(b, uint64(len(h.Value)))
		b = append(b, h.Value...)
	}
	b = append(b, msg.Value...)
	body := b[start+frameHeaderSize:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(body, castagnoli))
	return b
}

var (
	errBadFrame = errors.New("bad frame")
	// errChecksum is a frame whose body does not match its checksum.
	errChecksum = fmt.Errorf("%w: checksum mismatch", errBadFrame)
)

// versionError is a frame whose checksum matches but whose format version
// this binary does not know: not damage, but a record written by another
// (newer) version of the format.
type versionError struct{ version byte }

func (e versionError) Error() string {
	return fmt.Sprintf("format version %d (this binary reads version %d)", e.version, bodyVersion)
}

// frameSize reads the frame header at the start of b and returns the size of
// the whole frame (header and body). It returns errBadFrame when b is shorter
// than a header or the length is one no frame can have.
func frameSize(b []byte) (int, error) {
	if len(b) < frameHeaderSize {
		return 0, errBadFrame
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxBodySize {
		return 0, errBadFrame
	}
	return frameHeaderSize + int(n), nil
}

// checkFrame validates the frame at the start of b and returns its total size.
// It returns errBadFrame for a frame that is incomplete, oversized or whose
// checksum does not match, and a versionError (with the size: the frame is
// intact) for an intact frame in a format version other than bodyVersion.
func checkFrame(b []byte) (int, error) {
	size, err := frameSize(b)
	if err != nil || len(b) < size {
		return 0, errBadFrame
	}
	body := b[frameHeaderSize:size]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, errChecksum
	}
	if body[0] != bodyVersion {
		return size, versionError{body[0]}
	}
	return size, nil
}

// isVersionError reports whether err is checkFrame's for an intact frame in
// another format version.
func isVersionError(err error) bool {
	return errors.As(err, new(versionError))
}

// readError is the error of a read that found a frame at byte pos of path
// that checkFrame or decodeFrame refuse: ErrUnknownVersion for a record in
// another format version, ErrCorrupt for any other.
func readError(path string, pos int64, err error) error {
	if isVersionError(err) {
		return fmt.Errorf("read %s at byte %d: %w: %w", path, pos, ErrUnknownVersion, err)
	}
	return fmt.Errorf("read %s at byte %d: %w: %w", path, pos, ErrCorrupt, err)
}

// decodeFrame decodes a frame that checkFrame accepted. The record's slices
// point into b.
func decodeFrame(b []byte) (eventlog.Record, int, error) {
	size, err := checkFrame(b)
	if err != nil {
		return eventlog.Record{}, 0, err
	}
	body := b[frameHeaderSize+1 : size]
	var rec eventlog.Record
	var ok bool
	if rec.Key, body, ok = readBytes(body); !ok {
		return rec, 0, fmt.Errorf("%w: key", errBadFrame)
	}
	count, n := binary.Uvarint(body)
	if n <= 0 || count > uint64(len(body)) {
		return rec, 0, fmt.Errorf("%w: header count", errBadFrame)
	}
	body = body[n:]
	if count > 0 {
		rec.Headers = make([]eventlog.Header, count)
		for i := range rec.Headers {
			var k, v []byte
			if k, body, ok = readBytes(body); !ok {
				return rec, 0, fmt.Errorf("%w: header key", errBadFrame)
			}
			if v, body, ok = readBytes(body); !ok {
				return rec, 0, fmt.Errorf("%w: header value", errBadFrame)
			}
			rec.Headers[i] = eventlog.Header{Key: string(k), Value: v}
		}
	}
	rec.Value = body
	return rec, size, nil
}

func readBytes(b []byte) (field, rest []byte, ok bool) {
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return nil, nil, false
	}
	end := n + int(l)
	return b[n:end:end], b[end:], true
}
