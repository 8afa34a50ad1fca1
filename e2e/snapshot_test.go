package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/eventlog/filelog"
	"calculator/internal/kafkatest"
	"calculator/internal/loggen"
)

// snapshotEvery are the flags of a server that takes a snapshot after
// every 200 events, as soon as the one before is written.
var snapshotEvery = []string{"-snapshot-every", "200", "-snapshot-interval", "0s"}

// TestSnapshotRestartEqualsFullReplay kills the binary (SIGKILL) while
// clients send commands and snapshots are taken every 200 events, several
// times: a kill lands before, during or after a snapshot's write. After each
// restart from the newest snapshot and the log after it, everything a
// client can see (every value, histories, command statuses) is what a
// second binary that replays the same logs from offset 0 shows, the two
// decide the same next commands alike, and every command has exactly one
// outcome.
func TestSnapshotRestartEqualsFullReplay(t *testing.T) {
	dir := t.TempDir()
	// A history from before: 1,000 values and 10,000 updates.
	loggen.FileLog(t, dir, loggen.Spec{CommandsTopic: "commands", EventsTopic: "events", Values: 1000, Updates: 10_000, Seed: 11}).Close()
	acknowledged := map[string]bool{}
	var mu sync.Mutex
	for round := range 3 {
		s := start(t, dir, snapshotEvery...)
		if round > 0 && len(s.logged("view and subscriptions start from a snapshot")) != 1 {
			t.Fatalf("round %d: the restart did not start from a snapshot\n%s", round, s.logText())
		}
		s.waitCaughtUp()
		ids := valueIDs(t, s)
		// A keyed request before this round's snapshots.
		key := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {fmt.Sprintf("round-%d", round)}}
		keyed, err := s.doHeader("POST", "/values", `{"value":1}`, key)
		if err != nil || keyed.Status != http.StatusAccepted {
			t.Fatalf("keyed POST: %v %d %s", err, keyed.Status, keyed.Raw)
		}
		mu.Lock()
		acknowledged[keyed.Body["command_id"].(string)] = true
		mu.Unlock()
		stop := make(chan struct{})
		var acks atomic.Int64
		var wg sync.WaitGroup
		for c := range 8 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(round), uint64(c)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					var r response
					var err error
					switch k := rng.IntN(10); {
					case k == 0:
						r, err = s.do("POST", "/values", "application/json", fmt.Sprintf(`{"value":%d}`, rng.IntN(100)))
					case k == 1: // rejected: division by zero
						r, err = s.do("PUT", "/values/"+ids[rng.IntN(len(ids))], "application/json", `{"operation":"DIVIDE","value":0}`)
					default:
						op := []string{"ADD", "SUBTRACT", "MULTIPLY"}[rng.IntN(3)]
						r, err = s.do("PUT", "/values/"+ids[rng.IntN(len(ids))], "application/json", fmt.Sprintf(`{"operation":%q,"value":%d}`, op, 1+rng.IntN(3)))
					}
					if err != nil || r.Status != http.StatusAccepted {
						continue // the process died under us: not acknowledged
					}
					mu.Lock()
					acknowledged[r.Body["command_id"].(string)] = true
					mu.Unlock()
					acks.Add(1)
				}
			})
		}
		// Enough commands for several snapshots, and then some.
		eventually(t, "3 snapshots written", func() bool { return len(s.logged("snapshot written")) >= 3 })
		want := acks.Load() + int64(50+100*round)
		eventually(t, "more commands acknowledged", func() bool { return acks.Load() >= want })
		s.kill()
		close(stop)
		wg.Wait()
		// A log client that retried its appends: old commands, decided
		// before the snapshot, written again. The processor that starts
		// from the snapshot must know them decided.
		repeatCommands(t, dir, 20)

		s = start(t, dir, snapshotEvery...)
		if len(s.logged("view and subscriptions start from a snapshot")) != 1 || len(s.logged("starting from a snapshot")) != 1 {
			t.Fatalf("round %d: the restart did not start from a snapshot\n%s", round, s.logText())
		}
		s.waitCaughtUp()
		// The key is known after the restart: the same request is the same
		// command, another request under it is refused.
		if r, err := s.doHeader("POST", "/values", `{"value":1}`, key); err != nil || r.Status != http.StatusAccepted || r.Body["command_id"] != keyed.Body["command_id"] {
			t.Fatalf("the keyed request again: %v %d %s; want 202 for command %v", err, r.Status, r.Raw, keyed.Body["command_id"])
		}
		if r, err := s.doHeader("POST", "/values", `{"value":2}`, key); err != nil || r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("another request under the key: %v %d %s; want 422", err, r.Status, r.Raw)
		}
		full := start(t, copyLogs(t, dir), "-snapshot-every", "0")
		full.waitCaughtUp()
		sameAsFullReplay(t, s, full, slicesOf(acknowledged, &mu))
		s.stop()
		full.stop()
	}
	checkExactlyOnce(t, dir, acknowledged)
	checkDecisions(t, valuesOf(readLog(t, dir, "commands")), valuesOf(readLog(t, dir, "events")))
}

// valuesOf returns the values of records.
func valuesOf(recs []eventlog.Record) [][]byte {
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}

// repeatCommands appends n commands of a stopped server's commands log to
// it again, as a client that retried its appends would.
func repeatCommands(t *testing.T, dir string, n int) {
	t.Helper()
	recs := readLog(t, dir, "commands")
	l, err := filelog.Open(dir, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var again []eventlog.Message
	for i := range n {
		rec := recs[(i*7919)%len(recs)]
		again = append(again, eventlog.Message{Key: rec.Key, Value: rec.Value, Headers: rec.Headers})
	}
	if err := l.Append(context.Background(), "commands", again...); err != nil {
		t.Fatal(err)
	}
}

// slicesOf returns the keys of m.
func slicesOf(m map[string]bool, mu *sync.Mutex) []string {
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// copyLogs copies the logs of a stopped or idle server's data directory,
// without its snapshots, to a new directory.
func copyLogs(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{"commands.log", "events.log"} {
		from, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(to, name))
		if err == nil {
			_, err = io.Copy(out, from)
		}
		from.Close()
		if err == nil {
			err = out.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// valueIDs lists every value id through GET /values.
func valueIDs(t *testing.T, s *server) []string {
	t.Helper()
	var ids []string
	for _, v := range allValues(t, s) {
		ids = append(ids, v["value_id"].(string))
	}
	return ids
}

// allValues reads every page of GET /values.
func allValues(t *testing.T, s *server) []map[string]any {
	t.Helper()
	var out []map[string]any
	for path := "/values?limit=1000"; path != ""; {
		r := s.must("GET", path, "")
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s = %d %s", path, r.Status, r.Raw)
		}
		for _, v := range r.Body["values"].([]any) {
			out = append(out, v.(map[string]any))
		}
		path, _ = r.Body["next"].(string)
	}
	return out
}

// sameAsFullReplay compares what two servers on the same logs show: every
// value, the history (with rejections) of a sample of values, the status of
// a sample of commands; then it sends both the same keyed commands, which
// must be decided alike.
func sameAsFullReplay(t *testing.T, s, full *server, commands []string) {
	t.Helper()
	values, fullValues := allValues(t, s), allValues(t, full)
	if !reflect.DeepEqual(values, fullValues) {
		t.Fatalf("after a start from a snapshot %d values, after a full replay %d; they differ", len(values), len(fullValues))
	}
	rng := rand.New(rand.NewPCG(1, uint64(len(values))))
	for range 30 {
		id := values[rng.IntN(len(values))]["value_id"].(string)
		path := "/values/" + id + "/history?include=rejected&limit=1000"
		if a, b := s.must("GET", path, ""), full.must("GET", path, ""); a.Status != http.StatusOK || !reflect.DeepEqual(a.Body, b.Body) {
			t.Fatalf("GET %s: from a snapshot %d %s\nfull replay %d %s", path, a.Status, a.Raw, b.Status, b.Raw)
		}
	}
	for i := range min(200, len(commands)) {
		path := "/commands/" + commands[(i*7919)%len(commands)]
		if a, b := s.must("GET", path, ""), full.must("GET", path, ""); a.Status != http.StatusOK || !reflect.DeepEqual(a.Body, b.Body) {
			t.Fatalf("GET %s: from a snapshot %d %s\nfull replay %d %s", path, a.Status, a.Raw, b.Status, b.Raw)
		}
	}
	// The same keyed commands (the same command ids) on both: a processor
	// that started from a snapshot decides them as one that replayed all.
	for i := range 20 {
		id := values[rng.IntN(len(values))]["value_id"].(string)
		body := fmt.Sprintf(`{"operation":"MULTIPLY","value":%d}`, 2+i%3)
		header := http.Header{"Content-Type": {"application/json"}, "Idempotency-Key": {fmt.Sprintf("snapshot-check-%s-%d", id, i)}}
		for _, srv := range []*server{s, full} {
			if r, err := srv.doHeader("PUT", "/values/"+id+"?wait=5s", body, header); err != nil || r.Status >= 300 && r.Status != http.StatusConflict && r.Status != http.StatusUnprocessableEntity {
				t.Fatalf("keyed PUT: %v %d %s", err, r.Status, r.Raw)
			}
		}
	}
	s.waitCaughtUp()
	full.waitCaughtUp()
	values, fullValues = allValues(t, s), allValues(t, full)
	if !reflect.DeepEqual(values, fullValues) {
		t.Fatal("the same commands were decided differently after a start from a snapshot and after a full replay")
	}
}

// checkDecisions checks every event of an events log against the commands
// log: each is what domain.Decide answers its command with, given the fold
// of the events before it (in its partition: a value's events are all in
// one). A processor that started from a wrong state (a snapshot that is not
// the fold of the events before it) decides some command otherwise.
func checkDecisions(t *testing.T, commandRecords, eventRecords [][]byte) {
	t.Helper()
	commands := map[uuid.UUID]domain.Command{}
	for _, v := range commandRecords {
		if c, err := domain.DecodeCommand(v); err == nil {
			commands[c.ID] = c
		}
	}
	state := domain.NewState()
	for i, v := range eventRecords {
		e, err := domain.DecodeEvent(v)
		if err != nil {
			t.Fatalf("event #%d: %v", i, err)
		}
		c, ok := commands[e.ParentID]
		if !ok {
			t.Fatalf("event #%d answers command %s, which is not in the commands log", i, e.ParentID)
		}
		if want := domain.Decide(state, c, e.Timestamp); !reflect.DeepEqual(want, e) {
			t.Fatalf("event #%d is not the decision of its command on the events before it:\ngot  %+v\nwant %+v", i, e, want)
		}
		if _, _, err := state.Apply(e); err != nil {
			t.Fatalf("event #%d: %v", i, err)
		}
	}
}

// TestKafkaSnapshotRestart is the snapshot test on Kafka, with three
// partitions: after a kill, each partition's owner starts from the
// instance's snapshot of it and the view from the whole snapshot; what
// clients see equals what an instance that replays the topics from offset
// 0 shows; a partition that comes back from another instance starts from
// the snapshot again; and every event is the decision of its command on the
// events before it.
func TestKafkaSnapshotRestart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commandsTopic, eventsTopic, args := kafkaTopics(brokers)
	args = append(args, "-partitions", "3")
	withSnapshots := append(slices.Clone(args), snapshotEvery...)
	dir := t.TempDir()
	acknowledged := map[string]bool{}

	s := start(t, dir, withSnapshots...)
	l := startLoad(s, 8, acknowledged, nil)
	eventuallyWithin(t, clusterDeadline, "3 snapshots written", func() bool { return len(s.logged("snapshot written")) >= 3 })
	s.kill()
	l.stop()

	s = start(t, dir, withSnapshots...)
	eventuallyWithin(t, clusterDeadline, "every partition's owner started from the snapshot", func() bool {
		return len(s.logged("starting from a snapshot")) >= 3
	})
	if n := len(s.logged("view and subscriptions start from a snapshot")); n != 1 {
		t.Fatalf("the view started from a snapshot %d times, want 1\n%s", n, s.logText())
	}
	waitCaughtUpLong(s, clusterDeadline)
	l = startLoad(s, 4, acknowledged, l.values)
	want := l.acks.Load() + 300
	eventuallyWithin(t, clusterDeadline, "300 more commands acknowledged", func() bool { return l.acks.Load() >= want })
	l.stop()
	waitCaughtUpLong(s, clusterDeadline)

	// An instance without snapshots joins: it replays the topics from
	// offset 0, and takes some of the partitions.
	full := start(t, t.TempDir(), append(slices.Clone(args), "-snapshot-every", "0")...)
	eventuallyWithin(t, clusterDeadline, "two instances share the three partitions", func() bool {
		mine, settled := s.ownership()
		theirs, settled2 := full.ownership()
		return settled && settled2 && len(mine) > 0 && len(theirs) > 0 && len(mine)+len(theirs) == 3
	})
	waitCaughtUpLong(full, clusterDeadline)
	sameAsFullReplay(t, s, full, slicesOf(acknowledged, &l.mu))
	before := len(s.logged("starting from a snapshot"))
	full.stop()
	// Its partitions come back, and start from this instance's snapshot.
	eventuallyWithin(t, clusterDeadline, "the partitions that came back started from the snapshot", func() bool {
		return len(s.logged("starting from a snapshot")) > before
	})
	waitCaughtUpLong(s, clusterDeadline)
	s.stop()

	checkExactlyOnceKafka(t, brokers, commandsTopic, eventsTopic, acknowledged)
	checkDecisions(t, valuesOfMessages(kafkatest.ReadAll(t, brokers, commandsTopic)), valuesOfMessages(kafkatest.ReadAll(t, brokers, eventsTopic)))
}

// valuesOfMessages returns the values of Kafka messages.
func valuesOfMessages(msgs []*kafka.Message) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.Value
	}
	return out
}

// TestSnapshotFallsBack damages snapshots and replaces the logs under them:
// a start passes over what it cannot use (the older snapshot, then none)
// and answers as a full replay would.
func TestSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	loggen.FileLog(t, dir, loggen.Spec{CommandsTopic: "commands", EventsTopic: "events", Values: 200, Updates: 2000, Seed: 5}).Close()
	s := start(t, dir, snapshotEvery...)
	ids := valueIDs(t, s)
	for i := range 300 {
		s.update(ids[i%len(ids)], "ADD", 1)
	}
	s.waitCaughtUp()
	eventually(t, "2 snapshots written", func() bool { return len(s.logged("snapshot written")) >= 2 })
	want := allValues(t, s)
	historyPath := "/values/" + ids[0] + "/history?include=rejected&limit=1000"
	wantHistory, _ := s.pages(historyPath, "events")
	s.stop()
	files, err := filepath.Glob(filepath.Join(dir, "snapshots", "*.snap"))
	if err != nil || len(files) != 2 {
		t.Fatalf("snapshots %v (%v), want 2", files, err)
	}
	flip := func(file string) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0x40
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Starts that take no snapshot of their own.
	noNewSnapshots := []string{"-snapshot-every", "1000000000"}
	startFrom := func(what, file string) *server {
		t.Helper()
		s := start(t, dir, noNewSnapshots...)
		s.waitCaughtUp()
		started := s.logged("view and subscriptions start from a snapshot")
		switch {
		case file == "" && len(started) != 0:
			t.Fatalf("%s: started from %v, want a full replay\n%s", what, started[0]["file"], s.logText())
		case file != "" && (len(started) != 1 || started[0]["file"] != filepath.Base(file)):
			t.Fatalf("%s: did not start from %s\n%s", what, filepath.Base(file), s.logText())
		}
		return s
	}

	flip(files[1])
	s = startFrom("the newest snapshot damaged", files[0])
	if len(s.logged("skipping a snapshot that cannot be used")) == 0 {
		t.Fatalf("the damaged snapshot was not reported\n%s", s.logText())
	}
	if got := allValues(t, s); !reflect.DeepEqual(got, want) {
		t.Fatal("the values differ after a start from the older snapshot")
	}
	s.stop()

	// The view's history file gone: the snapshot, whose history index
	// refers to it, is passed over.
	if err := os.Remove(filepath.Join(dir, "history.blocks")); err != nil {
		t.Fatal(err)
	}
	s = startFrom("the history file gone", "")
	if !strings.Contains(s.logText(), "the history file is not the snapshot's") {
		t.Fatalf("the missing history file was not reported\n%s", s.logText())
	}
	if got := allValues(t, s); !reflect.DeepEqual(got, want) {
		t.Fatal("the values differ after a full replay")
	}
	if got, _ := s.pages(historyPath, "events"); !reflect.DeepEqual(got, wantHistory) {
		t.Fatalf("the history of %s differs after a full replay:\n%v\nwant %v", ids[0], got, wantHistory)
	}
	s.stop()

	flip(files[0])
	s = startFrom("both snapshots damaged", "")
	if got := allValues(t, s); !reflect.DeepEqual(got, want) {
		t.Fatal("the values differ after a full replay")
	}
	s.stop()

	// A good snapshot, then other, longer logs under it (a
	// backup of another installation restored, say).
	if err := os.RemoveAll(filepath.Join(dir, "snapshots")); err != nil {
		t.Fatal(err)
	}
	s = start(t, dir, snapshotEvery...)
	eventually(t, "a snapshot written", func() bool { return len(s.logged("snapshot written")) >= 1 })
	s.stop()
	other := t.TempDir()
	loggen.FileLog(t, other, loggen.Spec{CommandsTopic: "commands", EventsTopic: "events", Values: 300, Updates: 3000, Seed: 6}).Close() // longer: the snapshot's position is inside it
	for _, name := range []string{"commands.log", "events.log"} {
		b, err := os.ReadFile(filepath.Join(other, name))
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), b, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	full := start(t, other, "-snapshot-every", "0")
	want = allValues(t, full)
	full.stop()
	s = startFrom("other logs under the snapshot", "")
	if !strings.Contains(s.logText(), "the log is not the one the snapshot was taken of") {
		t.Fatalf("the stale snapshot was not reported\n%s", s.logText())
	}
	if got := allValues(t, s); !reflect.DeepEqual(got, want) {
		t.Fatal("the values differ from a full replay of the other logs")
	}
	s.stop()
}
