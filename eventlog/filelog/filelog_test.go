package filelog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/eventlog/logtest"
)

func openT(t *testing.T, dir string) *Log {
	t.Helper()
	l, err := Open(dir, zerolog.Nop())
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestConformance(t *testing.T) {
	logtest.Run(t, logtest.Backend{
		Open: func(t *testing.T) eventlog.Log { return openT(t, t.TempDir()) },
		Reopen: func(t *testing.T, l eventlog.Log) eventlog.Log {
			fl := l.(*Log)
			if err := fl.Close(); err != nil {
				t.Fatal(err)
			}
			return openT(t, fl.dir)
		},
		ContiguousOffsets: true,
	})
}

func appendValues(t *testing.T, l *Log, topic string, values ...string) {
	t.Helper()
	for _, v := range values {
		if err := l.Append(context.Background(), topic, eventlog.Message{Key: []byte("k"), Value: []byte(v)}); err != nil {
			t.Fatal(err)
		}
	}
}

// damage writes a log with three records, closes it, removes its index
// checkpoint (Open then checks every record) and lets edit change the file.
func damage(t *testing.T, edit func(data []byte, positions []int64) []byte) string {
	t.Helper()
	return damageLog(t, false, edit)
}

// damageCheckpointed is damage with the index checkpoint kept.
func damageCheckpointed(t *testing.T, edit func(data []byte, positions []int64) []byte) string {
	t.Helper()
	return damageLog(t, true, edit)
}

func damageLog(t *testing.T, keepCheckpoint bool, edit func(data []byte, positions []int64) []byte) string {
	t.Helper()
	dir := t.TempDir()
	l := openT(t, dir)
	appendValues(t, l, "t", "one", "two", "three")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !keepCheckpoint {
		if err := os.Remove(filepath.Join(dir, "t"+checkpointSuffix)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "t.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, edit(data, framePositionsOf(t, data)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// framePositionsOf is where each frame of a topic file's data starts.
func framePositionsOf(t *testing.T, data []byte) []int64 {
	t.Helper()
	var positions []int64
	for pos := 0; pos < len(data); {
		size, err := checkFrame(data[pos:])
		if err != nil {
			t.Fatalf("frame at %d: %v", pos, err)
		}
		positions = append(positions, int64(pos))
		pos += size
	}
	return positions
}

func TestTornTailIsCutOff(t *testing.T) {
	cases := map[string]func([]byte, []int64) []byte{
		"half a header":     func(d []byte, p []int64) []byte { return append(d, 7, 0, 0) },
		"record cut short":  func(d []byte, p []int64) []byte { return d[:len(d)-2] },
		"bad checksum last": func(d []byte, p []int64) []byte { d[len(d)-1] ^= 0xff; return d },
		"zeros after":       func(d []byte, p []int64) []byte { return append(d, make([]byte, 4096)...) },
	}
	for name, edit := range cases {
		for _, checkpointed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/checkpoint=%v", name, checkpointed), func(t *testing.T) {
				dir := damageLog(t, checkpointed, edit)
				l := openT(t, dir)
				got := logtest.ReadValues(t, l, "t")
				want := []string{"one", "two", "three"}
				if name == "record cut short" || name == "bad checksum last" {
					want = want[:2]
				}
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Fatalf("after recovery read %q, want %q", got, want)
				}
				// The log goes on after the cut: new appends land after the kept records.
				appendValues(t, l, "t", "four")
				if got := logtest.ReadValues(t, l, "t"); got[len(got)-1] != "four" || len(got) != len(want)+1 {
					t.Fatalf("after append read %q", got)
				}
			})
		}
	}
}

// Without an index checkpoint, Open checks every record: damage before the
// tail stops it. (With one, the background check finds it:
// TestCheckpointedDamageFailsTheTopic.)
func TestDamageBeforeTheTailStopsOpen(t *testing.T) {
	dir := damage(t, func(d []byte, p []int64) []byte {
		d[p[1]+frameHeaderSize+2] ^= 0xff // a byte inside the second record's body
		return d
	})
	_, err := Open(dir, zerolog.Nop())
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	for _, want := range []string{filepath.Join(dir, "t.log"), "byte offset"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestSecondOpenOfADirectoryFails(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir)
	_, err := Open(dir, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open = %v, want an 'in use' error", err)
	}
}

func FuzzScan(f *testing.F) {
	f.Add(appendFrame(nil, eventlog.Message{Key: []byte("k"), Value: []byte("v")}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		index, good, err := scan(strings.NewReader(string(data)), 0, int64(len(data)), sparseIndex{})
		if err != nil {
			return
		}
		if good > int64(len(data)) {
			t.Fatalf("good %d beyond size %d", good, len(data))
		}
		// Every record up to good decodes, one after the other, and the
		// index holds the position of each block's first and of the last.
		var want sparseIndex
		for pos := int64(0); pos < good; {
			_, size, err := decodeFrame(data[pos:good])
			if err != nil {
				t.Fatalf("frame at %d does not decode: %v", pos, err)
			}
			want.add(pos)
			pos += int64(size)
		}
		if !reflect.DeepEqual(index, want) {
			t.Fatalf("scan's index %+v, the frames' %+v", index, want)
		}
	})
}

// Concurrent appends share fsyncs: durability does not cost one disk sync
// per request.
func TestConcurrentAppendsShareSyncs(t *testing.T) {
	l := openT(t, t.TempDir())
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := l.Append(context.Background(), "t", eventlog.Message{Value: []byte("v")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	syncs := l.topics["t"].syncs.Load()
	t.Logf("%d appends, %d fsyncs", writers*each, syncs)
	if syncs >= writers*each {
		t.Fatalf("%d appends took %d fsyncs: no group commit", writers*each, syncs)
	}
	if got := len(logtest.ReadValues(t, l, "t")); got != writers*each {
		t.Fatalf("read %d records, want %d", got, writers*each)
	}
}

// reversion gives the frame at the start of b the format version v, with a
// checksum that matches: a record as a newer binary might write it.
func reversion(b []byte, v byte) {
	size, err := checkFrame(b)
	if err != nil {
		panic(err)
	}
	b[frameHeaderSize] = v
	binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[frameHeaderSize:size], castagnoli))
}

// A record with a valid checksum but a format version this binary does not
// know was written by a newer binary and acknowledged: it is not a torn
// write, and cutting it would drop acknowledged data. Open refuses, naming
// the file, the offset and the version.
func TestUnknownFormatVersionStopsOpen(t *testing.T) {
	cases := map[string]int{"last record": 2, "middle record": 1, "first record": 0}
	for name, record := range cases {
		t.Run(name, func(t *testing.T) {
			var at int64
			dir := damage(t, func(d []byte, p []int64) []byte {
				at = p[record]
				reversion(d[at:], 7)
				return d
			})
			path := filepath.Join(dir, "t.log")
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Open(dir, zerolog.Nop())
			if !errors.Is(err, ErrUnknownVersion) {
				t.Fatalf("Open = %v, want ErrUnknownVersion", err)
			}
			for _, want := range []string{path, fmt.Sprintf("byte offset %d", at), "version 7"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("Open changed the file (%d bytes, now %d): it must refuse without cutting", len(before), len(after))
			}
		})
	}
}
