// Package idempotency makes a retried POST or PUT safe (SPEC §3): a request
// sent with an Idempotency-Key header becomes a command whose id (and, for
// POST, whose value id) is derived from the key and the request, so that
// every retry of the same request, from any process and at any time, names
// the same command, and the processor, which gives a command id one outcome
// however often it is written, decides it once.
//
// What a retry needs is therefore computed, not remembered (request.go).
// What must be remembered is which request first used a key, so that the
// same key on another request is refused (422): the Index (index.go) keeps
// a hash of each key and of its request, rebuilt at startup from the
// commands log, where every keyed command carries its key and its request's
// hash as record headers (follow.go). It remembers a key for at least
// Options.Window or the last Options.MinKeys keys, whichever is more, in
// bounded memory (table.go).
//
// The Index also reserves a key before its command is appended, which closes
// the in-process race of two concurrent requests under one key, and lets
// concurrent retries of one request share a single append.
package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"calculator/domain"
	"calculator/eventlog"
)

// MaxKeyLength is the most characters an Idempotency-Key may have.
const MaxKeyLength = 255

// The record headers of a command sent with an Idempotency-Key (SPEC §4).
const (
	// HeaderKey carries the key as the client sent it.
	HeaderKey = "idempotency-key"
	// HeaderRequestHash carries the request's Fingerprint in hex, so that a
	// reader can tell whether a later request under the same key is the same
	// request without knowing how this version canonicalises requests.
	HeaderRequestHash = "request-hash"
)

// CheckKey reports whether key is a valid Idempotency-Key: 1 to
// MaxKeyLength printable ASCII characters (space to tilde).
func CheckKey(key string) error {
	if key == "" {
		return errors.New("the Idempotency-Key header is empty")
	}
	if len(key) > MaxKeyLength {
		return fmt.Errorf("the Idempotency-Key has %d characters; at most %d are allowed", len(key), MaxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < ' ' || c > '~' {
			return fmt.Errorf("the Idempotency-Key has a byte that is not printable ASCII (0x%02x at position %d)", c, i+1)
		}
	}
	return nil
}

// Fingerprint identifies a request: its method, its path and its members in
// a canonical form, hashed with SHA-256. Two requests with the same
// fingerprint ask for the same command.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of the request that cmd comes from:
// POST /values for a CreateValue (whose value id is not part of the request),
// PUT /values/{value id} for an UpdateValue. The canonical form spells the
// operation in upper case and the value with its significant digits (see
// appendValue), so that {"value":3} and {"value": 3.0} are one request;
// the expected version of a PUT with If-Match is part of it. Command ids
// derive from it: changing it changes the command id of a request that a
// client retries across an upgrade.
func FingerprintOf(cmd domain.Command) Fingerprint {
	var buf [128]byte
	b := buf[:0]
	switch cmd.Action {
	case domain.CreateValue:
		b = append(b, "POST /values\n"...)
	default:
		b = append(b, "PUT /values/"...)
		b = append(b, cmd.ValueID.String()...)
		b = append(b, "\noperation="...)
		b = append(b, cmd.Operation...)
		b = append(b, '\n')
	}
	b = append(b, "value="...)
	b = appendValue(b, cmd.Value)
	if cmd.Action == domain.UpdateValue && cmd.ExpectedVersion != 0 {
		// Only when there is one, so that the fingerprints (and the
		// command ids) of requests without If-Match stay what they were.
		b = append(b, "\nif-match="...)
		b = strconv.AppendInt(b, cmd.ExpectedVersion, 10)
	}
	return sha256.Sum256(b)
}

// appendValue writes v as strconv.AppendFloat(b, x, 'g', -1, 64) wrote the
// float64 x of the same digits when values were float64s: positional from
// 1e-4 up to 1e6, otherwise with an exponent of at least two digits
// (1.234567e+06, 1e-05). Every value a float64 held (its shortest form)
// keeps the text, and so the fingerprint, it had then; -0, now 0, is "0".
func appendValue(b []byte, v domain.Decimal) []byte {
	if v.Sign() < 0 {
		b = append(b, '-')
	}
	var buf [40]byte
	digits, exp := v.Digits(buf[:0])
	point := len(digits) + exp // digits before the decimal point
	if e := point - 1; e < -4 || e >= 6 {
		b = append(b, digits[0])
		if len(digits) > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e', '+')
		if e < 0 {
			b[len(b)-1], e = '-', -e
		}
		if e < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(e), 10)
	}
	if point <= 0 {
		b = append(b, '0')
	} else {
		b = append(b, digits[:min(point, len(digits))]...)
		for range point - len(digits) {
			b = append(b, '0')
		}
	}
	if point < len(digits) {
		b = append(b, '.')
		for range -point {
			b = append(b, '0')
		}
		b = append(b, digits[max(point, 0):]...)
	}
	return b
}

// The namespaces of the ids derived from a key and a request (UUIDv5).
var (
	commandNamespace = uuid.MustParse("0b5a3c56-52c1-4b8e-9d4f-2f6f0d3c8a11")
	valueNamespace   = uuid.MustParse("7d0e9f3a-9b64-4f0a-8c7e-5e2d1a6b4c22")
)

// CommandID is the id of the command that the request with this
// fingerprint, sent with key, asks for: the same for every retry.
func (fp Fingerprint) CommandID(key string) uuid.UUID {
	return uuid.NewSHA1(commandNamespace, append(fp[:], key...))
}

// ValueID is the id of the value that a POST with this fingerprint, sent
// with key, creates: the same for every retry.
func (fp Fingerprint) ValueID(key string) uuid.UUID {
	return uuid.NewSHA1(valueNamespace, append(fp[:], key...))
}

// String returns the fingerprint in hex, as HeaderRequestHash carries it.
func (fp Fingerprint) String() string { return hex.EncodeToString(fp[:]) }

// Headers returns the record headers of a command sent with key.
func Headers(key string, fp Fingerprint) []eventlog.Header {
	hash := make([]byte, hex.EncodedLen(len(fp)))
	hex.Encode(hash, fp[:])
	return []eventlog.Header{{Key: HeaderKey, Value: []byte(key)}, {Key: HeaderRequestHash, Value: hash}}
}

// parseFingerprint reads a HeaderRequestHash value.
func parseFingerprint(b []byte) (Fingerprint, bool) {
	var fp Fingerprint
	if hex.DecodedLen(len(b)) != len(fp) {
		return fp, false
	}
	_, err := hex.Decode(fp[:], b)
	return fp, err == nil
}
