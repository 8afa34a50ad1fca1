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
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"calculator/eventlog"
	"calculator/eventlog/logtest"
	"calculator/internal/await"
	"calculator/internal/testlog"
)

// values returns n record values, "v0" to "v<n-1>".
func values(n int) []string {
	vs := make([]string, n)
	for i := range vs {
		vs[i] = fmt.Sprintf("v%d", i)
	}
	return vs
}

// writeLog appends values to topic t of a new log in dir and closes it: a
// clean Close leaves an index checkpoint covering every record.
func writeLog(t *testing.T, dir string, vs ...string) {
	t.Helper()
	l := openT(t, dir)
	appendValues(t, l, "t", vs...)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// appendFrames adds records to the end of a closed topic file as a writer
// would: records acknowledged after the last checkpoint, before a crash.
func appendFrames(t *testing.T, path string, vs ...string) {
	t.Helper()
	var b []byte
	for _, v := range vs {
		b = appendFrame(b, eventlog.Message{Key: []byte("k"), Value: []byte(v)})
	}
	appendBytes(t, path, b)
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// covered decodes the checkpoint of topic t in dir and returns how many
// records it covers.
func covered(t *testing.T, dir string) int {
	t.Helper()
	c, err := decodeCheckpoint(readFile(t, filepath.Join(dir, "t"+checkpointSuffix)))
	if err != nil {
		t.Fatalf("the checkpoint of t: %v", err)
	}
	return int(c.index.records)
}

// checkOpen checks how topic t of l was opened: how many records came from
// a checkpoint unread, how many Open checked, and what it holds.
func checkOpen(t *testing.T, l *Log, unverified, checked int, want []string) {
	t.Helper()
	checkOpenCounts(t, l, unverified, checked)
	if got := logtest.ReadValues(t, l, "t"); !slices.Equal(got, want) {
		t.Fatalf("topic holds %q, want %q", got, want)
	}
}

// waitVerified waits until the background check of topic t has ended.
func waitVerified(t *testing.T, l *Log) {
	t.Helper()
	tp, err := l.topic("t")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tp.verified:
	case <-time.After(10 * time.Second):
		t.Fatal("the background check did not end within 10 s")
	}
}

// With a checkpoint, Open checks only the records after it: those appended
// since (acknowledged before a crash) and a torn tail after them, which it
// cuts as it always does. The background check then finds the covered
// records intact, and the next Close covers everything.
func TestOpenWithACheckpointChecksOnlyTheTail(t *testing.T) {
	dir := t.TempDir()
	vs := values(100)
	writeLog(t, dir, vs[:80]...)
	if got := covered(t, dir); got != 80 {
		t.Fatalf("Close wrote a checkpoint of %d records, want 80", got)
	}
	path := filepath.Join(dir, "t.log")

	l := openT(t, dir)
	checkOpen(t, l, 80, 0, vs[:80])
	waitVerified(t, l)
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy() = %v after the background check of intact records", err)
	}
	l.Close()

	appendFrames(t, path, vs[80:]...)
	torn := appendFrame(nil, eventlog.Message{Value: []byte("torn")})
	appendBytes(t, path, torn[:len(torn)-3])
	var logs testlog.Buffer
	l, err := Open(dir, zerolog.New(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	checkOpen(t, l, 80, 20, vs)
	if !strings.Contains(logs.String(), "cutting off a torn record") || !strings.Contains(logs.String(), "index checkpoint adopted") {
		t.Errorf("the log does not say the checkpoint was adopted and the torn tail cut:\n%s", logs.String())
	}
	checkFile(t, dir, "t", vs...)
	appendValues(t, l, "t", "after")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := covered(t, dir); got != 101 {
		t.Fatalf("Close wrote a checkpoint of %d records, want 101", got)
	}
}

// A damaged record among those the checkpoint covers does not stop Open,
// which does not read them, but the background check finds it: the topic
// fails (appends refused with the error, Healthy says it, the log names the
// file and byte offset), a Read or Follow of the record fails, the others read as
// before, and the checkpoint is removed, so that the next start checks the
// whole file and refuses it, as TestDamageBeforeTheTailStopsOpen does.
func TestCheckpointedDamageFailsTheTopic(t *testing.T) {
	cases := []struct {
		name string
		edit func(d []byte, at int64)
		want error
	}{
		{"body byte flipped", func(d []byte, at int64) { d[at+frameHeaderSize+2] ^= 0xff }, ErrCorrupt},
		{"length changed", func(d []byte, at int64) { d[at]-- }, ErrCorrupt},
		{"unknown format version", func(d []byte, at int64) { reversion(d[at:], 7) }, ErrUnknownVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var at int64
			dir := damageCheckpointed(t, func(d []byte, p []int64) []byte {
				at = p[1]
				c.edit(d, at)
				return d
			})
			path := filepath.Join(dir, "t.log")
			var logs testlog.Buffer
			l, err := Open(dir, zerolog.New(&logs))
			if err != nil {
				t.Fatalf("Open with a checkpoint = %v: it must not read the records the checkpoint covers", err)
			}
			defer l.Close()
			waitVerified(t, l)

			health := l.Healthy()
			if !errors.Is(health, c.want) {
				t.Fatalf("Healthy() = %v, want %v", health, c.want)
			}
			for _, want := range []string{path, fmt.Sprintf("byte offset %d", at)} {
				if !strings.Contains(health.Error(), want) {
					t.Errorf("Healthy() = %q does not say %q", health, want)
				}
			}
			if err := appendValue(l, "t", "four"); !errors.Is(err, c.want) {
				t.Fatalf("Append to the failed topic = %v, want %v", err, c.want)
			}
			var failed bool
			for _, line := range logs.Lines(t) {
				msg, _ := line["error"].(string)
				failed = failed || line["level"] == "error" && strings.Contains(msg, path) && strings.Contains(msg, fmt.Sprintf("byte offset %d", at))
			}
			if !failed {
				t.Errorf("no error logged naming %s and byte offset %d:\n%s", path, at, logs.String())
			}
			if _, err := l.Read(context.Background(), "t", 0, []int64{1}); !errors.Is(err, c.want) {
				t.Errorf("Read of the damaged record = %v, want %v", err, c.want)
			}
			err = l.Follow(context.Background(), "t", nil, func(eventlog.Batch) error { return nil })
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", at)) {
				t.Errorf("Follow over the damaged record = %v, want %v at byte %d", err, c.want, at)
			}
			recs, err := l.Read(context.Background(), "t", 0, []int64{0, 2})
			if err != nil || len(recs) != 2 || string(recs[0].Value) != "one" || string(recs[1].Value) != "three" {
				t.Errorf("Read of the intact records = %v, %v", recs, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "t"+checkpointSuffix)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the checkpoint is still there (%v): the next start would not check the file", err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "t"+checkpointSuffix)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Close wrote a checkpoint of a failed topic (%v)", err)
			}
			if _, err := Open(dir, zerolog.Nop()); !errors.Is(err, c.want) {
				t.Fatalf("the next Open = %v, want %v", err, c.want)
			}
		})
	}
}

// A checkpoint of another file (the file cut by hand below it, replaced by
// another log, or an older, shorter copy of it) is logged, removed and
// passed over: Open checks every record, finds what the file holds, and
// Close writes a checkpoint that the next Open adopts.
func TestStaleCheckpointIsPassedOver(t *testing.T) {
	vs := values(10)
	cases := []struct {
		name string
		// stale leaves dir with a topic file and a checkpoint of another
		// file, and returns what the topic file holds.
		stale func(t *testing.T, dir string) []string
	}{
		{"file cut below it", func(t *testing.T, dir string) []string {
			writeLog(t, dir, vs...)
			path := filepath.Join(dir, "t.log")
			data := readFile(t, path)
			five := int64(len(frames(vs[:5]...)))
			writeFile(t, path, data[:five])
			return vs[:5]
		}},
		{"file cut and written again past it", func(t *testing.T, dir string) []string {
			writeLog(t, dir, vs...)
			path := filepath.Join(dir, "t.log")
			other := append(slices.Clone(vs[:5]), "w5", "w6", "w7", "w8", "w9", "w10")
			writeFile(t, path, frames(other...))
			return other
		}},
		{"another log of the same shape", func(t *testing.T, dir string) []string {
			writeLog(t, dir, vs...)
			other := []string{"x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9"}
			writeFile(t, filepath.Join(dir, "t.log"), frames(other...))
			return other
		}},
		{"a checkpoint of a longer file", func(t *testing.T, dir string) []string {
			path := filepath.Join(dir, "t.log")
			writeLog(t, dir, vs[:4]...)
			short := readFile(t, path)
			l := openT(t, dir)
			appendValues(t, l, "t", vs[4:]...)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, short)
			return vs[:4]
		}},
		{"no topic file", func(t *testing.T, dir string) []string {
			writeLog(t, dir, vs...)
			if err := os.Remove(filepath.Join(dir, "t.log")); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			want := c.stale(t, dir)
			var logs testlog.Buffer
			l := openWith(t, dir, Options{Logger: zerolog.New(&logs)})
			checkOpen(t, l, 0, len(want), want)
			if !strings.Contains(logs.String(), "index checkpoint cannot be used") {
				t.Errorf("the log does not say why the checkpoint was passed over:\n%s", logs.String())
			}
			if _, err := os.Stat(filepath.Join(dir, "t"+checkpointSuffix)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the stale checkpoint is still there (%v)", err)
			}
			appendValues(t, l, "t", "new")
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openT(t, dir)
			checkOpen(t, l, len(want)+1, 0, append(slices.Clone(want), "new"))
		})
	}
}

// frames returns the frames of the values, as a writer writes them.
func frames(vs ...string) []byte {
	var b []byte
	for _, v := range vs {
		b = appendFrame(b, eventlog.Message{Key: []byte("k"), Value: []byte(v)})
	}
	return b
}

// A damaged checkpoint (cut at any length, any bit flipped, another format
// version) is passed over: Open checks every record and finds them all.
func TestDamagedCheckpointIsPassedOver(t *testing.T) {
	dir := t.TempDir()
	vs := values(5)
	writeLog(t, dir, vs...)
	path := filepath.Join(dir, "t"+checkpointSuffix)
	good := readFile(t, path)

	damaged := map[string][]byte{}
	for n := range len(good) {
		damaged[fmt.Sprintf("cut to %d bytes", n)] = good[:n]
	}
	for i := range good {
		for bit := range 8 {
			d := slices.Clone(good)
			d[i] ^= 1 << bit
			damaged[fmt.Sprintf("byte %d bit %d flipped", i, bit)] = d
		}
	}
	newer := slices.Clone(good)
	newer[8] = checkpointVersion + 1
	newerName := fmt.Sprintf("format version %d", checkpointVersion+1)
	damaged[newerName] = newer
	damaged["a byte more"] = append(slices.Clone(good), 0)

	for name, d := range damaged {
		writeFile(t, path, d)
		var logs testlog.Buffer
		l, err := Open(dir, zerolog.New(&logs))
		if err != nil {
			t.Fatalf("%s: Open = %v", name, err)
		}
		tp := l.topics["t"]
		if tp.unverified != 0 || tp.checkedAtOpen != len(vs) {
			t.Errorf("%s: Open took %d records from the checkpoint and checked %d, want 0 and %d", name, tp.unverified, tp.checkedAtOpen, len(vs))
		}
		if got := logtest.ReadValues(t, l, "t"); !slices.Equal(got, vs) {
			t.Errorf("%s: topic holds %q, want %q", name, got, vs)
		}
		if !strings.Contains(logs.String(), "index checkpoint cannot be used") {
			t.Errorf("%s: the log does not say why the checkpoint was passed over:\n%s", name, logs.String())
		}
		if name == newerName && !strings.Contains(logs.String(), newerName) {
			t.Errorf("the log does not name the checkpoint's version:\n%s", logs.String())
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readFile(t, path), good) {
			t.Fatalf("%s: Close did not write the checkpoint again", name)
		}
	}
}

// A checkpoint whose write fails or is cut short by a crash leaves the
// one before it: the write goes to a temporary file, renamed over the old
// one only once it is fsync'd. Open removes a temporary file a crash left.
func TestCrashWhileWritingACheckpoint(t *testing.T) {
	vs := values(8)
	faults := map[string]func(fs *faultyFS, err error){
		"write fails": func(fs *faultyFS, err error) { fs.writeErr = err },
		"fsync fails": func(fs *faultyFS, err error) { fs.syncErr = err },
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, vs[:5]...)
			path := filepath.Join(dir, "t"+checkpointSuffix)
			old := readFile(t, path)

			fs := &faultyFS{}
			var logs testlog.Buffer
			l := openWith(t, dir, Options{fs: fs, Logger: zerolog.New(&logs)})
			appendValues(t, l, "t", vs[5:]...)
			fs.set(func(fs *faultyFS) { fault(fs, syscall.EIO) })
			if err := l.Close(); err != nil {
				t.Fatalf("Close = %v: a checkpoint that cannot be written only costs time", err)
			}
			if !strings.Contains(logs.String(), "index checkpoint not written") {
				t.Errorf("the log does not say the checkpoint was not written:\n%s", logs.String())
			}
			if !bytes.Equal(readFile(t, path), old) {
				t.Fatal("the failed write changed the checkpoint")
			}
			if _, err := os.Stat(path + tmpSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the temporary file is left (%v)", err)
			}
			l = openT(t, dir)
			checkOpen(t, l, 5, 3, vs)
		})
	}

	t.Run("crash in the middle", func(t *testing.T) {
		dir := t.TempDir()
		writeLog(t, dir, vs[:5]...)
		path := filepath.Join(dir, "t"+checkpointSuffix)
		old := readFile(t, path)
		logPath := filepath.Join(dir, "t.log")
		appendFrames(t, logPath, vs[5:]...)
		// The new checkpoint, half written when the process died.
		data := readFile(t, logPath)
		index, size, err := scan(bytes.NewReader(data), 0, int64(len(data)), sparseIndex{})
		if err != nil {
			t.Fatal(err)
		}
		newer := encodeCheckpoint(index, size, crcField(data, index.last))
		writeFile(t, path+tmpSuffix, newer[:len(newer)/2])

		l := openT(t, dir)
		checkOpen(t, l, 5, 3, vs)
		if _, err := os.Stat(path + tmpSuffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open left the unfinished checkpoint (%v)", err)
		}
		if !bytes.Equal(readFile(t, path), old) {
			t.Error("Open changed the checkpoint")
		}
		// Had the rename happened, the new one would be adopted whole.
		l.Close()
		writeFile(t, path, newer)
		checkOpen(t, openT(t, dir), 8, 0, vs)
	})
}

// crcField is the checksum field of the frame at pos.
func crcField(data []byte, pos int64) uint32 {
	return binary.LittleEndian.Uint32(data[pos+4:])
}

// While the log runs, a checkpoint is written in the background once
// enough was appended since the last, covering only acknowledged records;
// a crash then (a copy of the files as they are) costs an Open only the
// records after it.
func TestCheckpointIsWrittenWhileRunning(t *testing.T) {
	dir := t.TempDir()
	l := openWith(t, dir, Options{checkpointEvery: checkpointEvery{records: 10, bytes: 1 << 30}})
	vs := values(25)
	for _, v := range vs {
		appendValues(t, l, "t", v)
	}
	tp := l.topics["t"]
	await.Until(t, 10*time.Second, "a checkpoint of 20 records or more", func() bool { return tp.checkpointed.Load() >= 20 })
	n := covered(t, dir)
	if n < 20 || n > len(vs) {
		t.Fatalf("the checkpoint covers %d records, want 20 to %d", n, len(vs))
	}

	crashed := t.TempDir()
	for _, name := range []string{"t.log", "t" + checkpointSuffix} {
		writeFile(t, filepath.Join(crashed, name), readFile(t, filepath.Join(dir, name)))
	}
	checkOpen(t, openT(t, crashed), n, len(vs)-n, vs)
}

// The bytes appended are a reason for a checkpoint too.
func TestCheckpointIsDueByBytes(t *testing.T) {
	dir := t.TempDir()
	l := openWith(t, dir, Options{checkpointEvery: checkpointEvery{records: 1 << 30, bytes: 1000}})
	big := strings.Repeat("x", 600)
	appendValues(t, l, "t", big)
	tp := l.topics["t"]
	if tp.checkpointed.Load() != 0 {
		t.Fatal("a checkpoint after 600 bytes, want one after 1000")
	}
	appendValues(t, l, "t", big)
	await.Until(t, 10*time.Second, "a checkpoint after 1200 bytes", func() bool { return tp.checkpointed.Load() == 2 })
}

// Read and Follow give the same records, whole, from a log opened with a
// checkpoint and from the same log opened without one: from every offset,
// and for any set of offsets.
func TestCheckpointChangesNoRecord(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir)
	var msgs []eventlog.Message
	for i := range 300 {
		m := eventlog.Message{Key: fmt.Appendf(nil, "key-%d", i%7), Value: bytes.Repeat([]byte{byte(i)}, 1+i*i%40000)}
		if i%3 == 0 {
			m.Headers = []eventlog.Header{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}, {Key: "empty"}}
		}
		msgs = append(msgs, m)
	}
	for i := 0; i < len(msgs); i += 1 + i%13 {
		if err := l.Append(context.Background(), "t", msgs[i:min(i+1+i%13, len(msgs))]...); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	writeFile(t, filepath.Join(plain, "t.log"), readFile(t, filepath.Join(dir, "t.log")))

	with, without := openT(t, dir), openT(t, plain)
	checkOpen(t, with, len(msgs), 0, valuesOf(logtest.ReadAll(t, without, "t")))
	all := make([]int64, len(msgs))
	for i := range all {
		all[i] = int64(i)
	}
	sets := [][]int64{all, {0}, {299}, {1, 2, 3, 150, 298}, {5, 17, 18, 200}}
	for _, offsets := range sets {
		a, errA := with.Read(context.Background(), "t", 0, offsets)
		b, errB := without.Read(context.Background(), "t", 0, offsets)
		if errA != nil || errB != nil || !reflect.DeepEqual(a, b) || len(a) != len(offsets) {
			t.Fatalf("Read(%v): with a checkpoint %d records (%v), without %d (%v), or they differ", offsets, len(a), errA, len(b), errB)
		}
	}
	for i, rec := range mustRead(t, with, all) {
		if !bytes.Equal(rec.Key, msgs[i].Key) || !bytes.Equal(rec.Value, msgs[i].Value) || len(rec.Headers) != len(msgs[i].Headers) {
			t.Fatalf("record %d is not the one appended", i)
		}
	}
	for _, from := range []int64{0, 1, 150, 299, 300} {
		a, b := followFrom(t, with, from), followFrom(t, without, from)
		if !reflect.DeepEqual(a, b) || len(a) != len(msgs)-int(from) {
			t.Fatalf("Follow from %d: %d records with a checkpoint, %d without, or they differ", from, len(a), len(b))
		}
	}
}

func valuesOf(recs []eventlog.Record) []string {
	var vs []string
	for _, r := range recs {
		vs = append(vs, string(r.Value))
	}
	return vs
}

func mustRead(t *testing.T, l *Log, offsets []int64) []eventlog.Record {
	t.Helper()
	recs, err := l.Read(context.Background(), "t", 0, offsets)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// followFrom follows topic t from offset from until caught up.
func followFrom(t *testing.T, l *Log, from int64) []eventlog.Record {
	t.Helper()
	var got []eventlog.Record
	err := l.Follow(context.Background(), "t", eventlog.Offsets{0: from}, func(b eventlog.Batch) error {
		got = append(got, b.Records...)
		if b.CaughtUp {
			return eventlog.ErrStopFollowing
		}
		return nil
	})
	if !errors.Is(err, eventlog.ErrStopFollowing) {
		t.Fatalf("Follow from %d: %v", from, err)
	}
	return got
}

// The checkpoint decoder accepts only what describes a file's records (at
// least one, in blocks each of a size its records can have, the first at
// 0, adding up to the bytes covered, the last record inside the last
// block), and what it accepts encodes back to itself. Each input is decoded
// as it is and with its checksum made right, so that the fuzzer reaches the
// body.
func FuzzDecodeCheckpoint(f *testing.F) {
	f.Add(encodeCheckpoint(indexOf(0), 20, 7))
	f.Add(encodeCheckpoint(indexOf(0, 300, 600, 1000), 1300, 0xdeadbeef))
	f.Add(encodeCheckpoint(indexOf(0, 9), 9+maxFrameSize, 1))
	sizes := make([]int64, 3*blockRecords+5)
	for i := range sizes {
		sizes[i] = int64(minFrameSize + i%50)
	}
	f.Add(encodeCheckpoint(indexOf(positionsOfSizes(sizes)...), sum(sizes), 3))
	f.Add([]byte("FLOGIDX\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecoded(t, data)
		if len(data) >= checkpointHeader {
			fixed := slices.Clone(data)
			binary.LittleEndian.PutUint32(fixed[12:], crc32.Checksum(fixed[checkpointHeader:], castagnoli))
			checkDecoded(t, fixed)
		}
	})
}

// indexOf is the index of records at positions.
func indexOf(positions ...int64) sparseIndex {
	var x sparseIndex
	for _, p := range positions {
		x.add(p)
	}
	return x
}

// positionsOfSizes is where records of sizes lie, one after the other from 0.
func positionsOfSizes(sizes []int64) []int64 {
	positions := make([]int64, len(sizes))
	for i := 1; i < len(sizes); i++ {
		positions[i] = positions[i-1] + sizes[i-1]
	}
	return positions
}

func sum(xs []int64) int64 {
	var s int64
	for _, x := range xs {
		s += x
	}
	return s
}

// checkDecoded checks what decodeCheckpoint makes of data, if it accepts it.
func checkDecoded(t *testing.T, data []byte) {
	t.Helper()
	c, err := decodeCheckpoint(data)
	if err != nil {
		return
	}
	x := c.index
	if x.records == 0 || int64(len(x.blocks)) != (x.records+blockRecords-1)/blockRecords || x.blocks[0] != 0 {
		t.Fatalf("%d records in blocks %v", x.records, x.blocks[:min(len(x.blocks), 3)])
	}
	for b := range x.blocks {
		n := int64(x.blockLen(int64(b)))
		if size := x.blockEnd(int64(b), c.covered) - x.blocks[b]; size < n*minFrameSize || size > n*maxFrameSize {
			t.Fatalf("block %d of %d records is %d bytes", b, n, size)
		}
	}
	if last := x.blocks[len(x.blocks)-1]; x.last < last || c.covered-x.last < minFrameSize || c.covered-x.last > maxFrameSize {
		t.Fatalf("the last record at %d, in a last block from %d to %d", x.last, last, c.covered)
	}
	again, err := decodeCheckpoint(encodeCheckpoint(c.index, c.covered, c.lastCRC))
	if err != nil || !reflect.DeepEqual(again, c) {
		t.Fatalf("encoding the decoded checkpoint and decoding it again = %v, %v", again, err)
	}
}

// A checkpoint is a cache: it is not written when it would leave less than
// the free-space reserve kept for the outcomes of accepted commands.
func TestCheckpointKeepsTheReserve(t *testing.T) {
	free := uint64(1 << 30)
	fs := &faultyFS{free: &free}
	dir := t.TempDir()
	var logs testlog.Buffer
	l := openWith(t, dir, Options{fs: fs, Logger: zerolog.New(&logs), RefuseBelowReserve: []string{"commands"}, FreeSpaceReserve: 1 << 20})
	appendValues(t, l, "t", values(3)...)
	fs.set(func(*faultyFS) { free = 1<<20 + 10 })
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "t"+checkpointSuffix)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a checkpoint was written into the reserve (%v)", err)
	}
	if !strings.Contains(logs.String(), "index checkpoint not written") || !strings.Contains(logs.String(), "reserve") {
		t.Errorf("the log does not say why no checkpoint was written:\n%s", logs.String())
	}
}
