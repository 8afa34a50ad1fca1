package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"calculator/domain"
	"calculator/eventlog"
	"calculator/internal/kafkatest"
)

// The end-to-end tests of scaling out on Kafka (SPEC §6): topics the
// instances cannot share, and several instances sharing them.

// TestKafkaMisconfiguredTopicsStopTheStart starts the binary against topics
// it must not use: it exits with an error that says what is wrong and what
// to do, instead of retrying or serving.
func TestKafkaMisconfiguredTopicsStopTheStart(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	for _, tc := range []struct {
		name             string
		commands, events int // partitions of the existing topics
		partitions       string
		want             string
	}{
		{"partition counts differ", 2, 3, "2", "their partition counts differ"},
		{"-partitions differs from the topics", 3, 3, "1", "start with -partitions 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commandsTopic, eventsTopic, args := kafkaTopics(brokers)
			kafkatest.CreateTopic(t, brokers, commandsTopic, tc.commands)
			kafkatest.CreateTopic(t, brokers, eventsTopic, tc.events)
			s := launch(t, t.TempDir(), append(args, "-partitions", tc.partitions)...)
			select {
			case <-s.exited:
			case <-time.After(deadline):
				t.Fatalf("the calculator still runs %s after start on misconfigured topics\n%s", deadline, s.logText())
			}
			if s.exitErr == nil {
				t.Fatalf("the calculator exited with status 0 on misconfigured topics\n%s", s.logText())
			}
			if logs := s.logText(); !strings.Contains(logs, tc.want) {
				t.Fatalf("the calculator's output does not say %q:\n%s", tc.want, logs)
			}
		})
	}
}

// partitions is the number of partitions of the scale-out tests' topics.
const partitions = 6

// clusterDeadline bounds the waits of the scale-out tests: a takeover waits
// out a session timeout, and several instances and brokers share the
// machine's cores.
const clusterDeadline = 2 * time.Minute

// ownership is what an instance's /readyz says it owns; settled is false
// until it is ready and replays none of them.
func (s *server) ownership() (owned []int32, settled bool) {
	r, err := s.do("GET", "/readyz", "", "")
	if err != nil || r.Status != http.StatusOK {
		return nil, false
	}
	proc, _ := r.Body["processor"].(map[string]any)
	list, _ := proc["partitions"].([]any)
	replaying, _ := proc["replaying"].([]any)
	for _, p := range list {
		owned = append(owned, int32(p.(float64)))
	}
	return owned, len(replaying) == 0
}

// waitShared waits until the instances own every partition between them,
// each partition once, each instance at least one, none replaying, and
// returns who owns what.
func waitShared(t *testing.T, what string, servers ...*server) [][]int32 {
	t.Helper()
	var owned [][]int32
	eventuallyWithin(t, clusterDeadline, what, func() bool {
		owned = owned[:0]
		seen := map[int32]bool{}
		for _, s := range servers {
			ps, settled := s.ownership()
			if !settled || len(ps) == 0 {
				return false
			}
			for _, p := range ps {
				if seen[p] {
					return false
				}
				seen[p] = true
			}
			owned = append(owned, ps)
		}
		return len(seen) == partitions
	})
	return owned
}

// clusterLoad sends commands to several instances from several clients
// until stopped, as load does to one: a quarter creates, the rest ADD 1 to a
// value created before. Client c sends to instance c mod n; an instance
// that is down or paused only costs its clients time.
type clusterLoad struct {
	mu           sync.Mutex
	servers      []*server
	acknowledged map[string]bool
	values       []string
	acks         atomic.Int64
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

func startClusterLoad(servers []*server, clients int) *clusterLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &clusterLoad{servers: slices.Clone(servers), acknowledged: map[string]bool{}, cancel: cancel}
	for c := range clients {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				l.mu.Lock()
				s := l.servers[c%len(l.servers)]
				update := len(l.values) > 0 && i%4 != 0
				target := ""
				if update {
					target = l.values[(c*31+i)%len(l.values)]
				}
				l.mu.Unlock()
				var r response
				var err error
				if update {
					r, err = s.doContext(ctx, "PUT", "/values/"+target, "application/json", `{"operation":"ADD","value":1}`)
				} else {
					r, err = s.doContext(ctx, "POST", "/values", "application/json", `{"value":1}`)
				}
				if err != nil {
					time.Sleep(10 * time.Millisecond) // the instance is gone: not acknowledged
					continue
				}
				if r.Status == http.StatusAccepted {
					l.mu.Lock()
					l.acknowledged[r.Body["command_id"].(string)] = true
					if !update {
						l.values = append(l.values, r.Body["value_id"].(string))
					}
					l.mu.Unlock()
					l.acks.Add(1)
				}
			}
		})
	}
	return l
}

// replace points the clients of instance i at s.
func (l *clusterLoad) replace(i int, s *server) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.servers[i] = s
}

// more waits until n more commands are acknowledged.
func (l *clusterLoad) more(t *testing.T, n int64, what string) {
	t.Helper()
	target := l.acks.Load() + n
	eventuallyWithin(t, clusterDeadline, fmt.Sprintf("%d more commands acknowledged %s", n, what), func() bool { return l.acks.Load() >= target })
}

func (l *clusterLoad) stop() {
	l.cancel()
	l.wg.Wait()
}

// valueIn returns a value of the load whose partition is one of ps.
func (l *clusterLoad) valueIn(ps []int32) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.values {
		if slices.Contains(ps, kafkatest.Partition([]byte(v), partitions)) {
			return v
		}
	}
	return ""
}

// measureTakeover sends, through via, an update to a value of the given
// partitions (which nobody owns since at), waits for its outcome, and
// returns how long after at it came: the time until the new owner decides.
func measureTakeover(t *testing.T, l *clusterLoad, via *server, ps []int32, at time.Time) time.Duration {
	t.Helper()
	value := l.valueIn(ps)
	if value == "" {
		t.Fatalf("no value of the load is in partitions %v", ps)
	}
	r, err := via.do("PUT", "/values/"+value+"?wait=30s", "application/json", `{"operation":"ADD","value":0}`)
	if err != nil || r.Status != http.StatusOK {
		t.Fatalf("an update of value %s (partition %d) through a surviving instance: %v %d %s", value, kafkatest.Partition([]byte(value), partitions), err, r.Status, r.Raw)
	}
	l.mu.Lock()
	l.acknowledged[r.Body["command_id"].(string)] = true
	l.mu.Unlock()
	return time.Since(at)
}

// TestKafkaScaleOut runs three instances of the binary in one group on
// 6-partition topics, under load sent to all three. One is killed with
// SIGKILL and restarted, one is paused (SIGSTOP) past its session timeout
// and resumed: its partitions move to the others, and the paused instance,
// a zombie when it wakes up, cannot add an outcome (its writers are
// fenced). Afterwards every acknowledged command has exactly one outcome in
// the events topic, each in the partition of its command, read by a client
// that is not the product, and every instance answers every value with the
// fold of the events topic.
func TestKafkaScaleOut(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	commandsTopic, eventsTopic, args := kafkaTopics(brokers)
	args = append(args, "-partitions", strconv.Itoa(partitions))
	servers := []*server{launch(t, t.TempDir(), args...), launch(t, t.TempDir(), args...), launch(t, t.TempDir(), args...)}
	for _, s := range servers {
		s.waitReady()
	}
	owned := waitShared(t, "three instances share the partitions", servers...)
	t.Logf("ownership: %v", owned)

	// Read your writes on another instance than the one that took the command.
	commandID, valueID := servers[0].create(7)
	if r := servers[1].must("GET", "/values/"+valueID+"?after="+commandID, ""); r.Status != http.StatusOK || r.Body["value"] != 7.0 {
		t.Fatalf("GET ?after= on another instance: %d %s, want 200 with value 7", r.Status, r.Raw)
	}
	// The third instance's view may be a moment behind: read your write
	// there too, then its status of the command is final.
	if r := servers[2].must("GET", "/values/"+valueID+"?after="+commandID, ""); r.Status != http.StatusOK {
		t.Fatalf("GET ?after= on a third instance: %d %s, want 200", r.Status, r.Raw)
	}
	if r := servers[2].must("GET", "/commands/"+commandID, ""); r.Status != http.StatusOK || r.Body["status"] != "succeeded" {
		t.Fatalf("GET /commands/{id} on a third instance: %d %s, want succeeded", r.Status, r.Raw)
	}

	load := startClusterLoad(servers, 12)
	load.mu.Lock()
	load.acknowledged[commandID] = true
	load.mu.Unlock()
	load.more(t, 300, "before the crash")

	// kill -9 one instance; the others take over its partitions.
	victim, _ := servers[1].ownership()
	killed := time.Now()
	servers[1].kill()
	takeover := measureTakeover(t, load, servers[0], victim, killed)
	t.Logf("kill -9 of the owner of partitions %v: the first outcome of those partitions came %s later", victim, takeover.Round(time.Millisecond))
	waitShared(t, "the two survivors own every partition", servers[0], servers[2])
	load.more(t, 200, "after the crash")
	servers[1] = start(t, t.TempDir(), args...)
	load.replace(1, servers[1])
	waitShared(t, "the restarted instance is given partitions again", servers...)
	load.more(t, 200, "after the restart")

	// SIGSTOP one instance past its session timeout.
	paused, _ := servers[2].ownership()
	if err := servers[2].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitShared(t, "the others own the paused instance's partitions", servers[0], servers[1])
	t.Logf("SIGSTOP of the owner of partitions %v: the others own them %s later", paused, time.Since(stopped).Round(time.Millisecond))
	load.more(t, 200, "while an instance is paused")
	if err := servers[2].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitShared(t, "the resumed instance is given partitions again", servers...)
	lost := 0
	for _, l := range servers[2].logged("partitions revoked") {
		if l["lost"] == true {
			lost++
		}
	}
	if lost == 0 {
		t.Errorf("the resumed instance never logged that it lost its partitions:\n%s", tail(servers[2].logText(), 40))
	}
	t.Logf("the zombie's owners found their writers fenced %d times", len(servers[2].logged("another owner has fenced this partition's writer; waiting for the group to revoke it")))
	load.more(t, 200, "after the pause")
	load.stop()

	for _, s := range servers {
		waitCaughtUpLong(s, clusterDeadline)
	}
	checkExactlyOnceKafka(t, brokers, commandsTopic, eventsTopic, load.acknowledged)
	state := checkEventPartitions(t, brokers, commandsTopic, eventsTopic)
	checkEveryInstanceShows(t, state, servers...)
}

// checkEventPartitions reads both topics with a plain client and checks that
// each command is in its key's partition and each event in the partition of
// its command. It returns the fold of the events topic.
func checkEventPartitions(t *testing.T, brokers, commandsTopic, eventsTopic string) *domain.State {
	t.Helper()
	for _, m := range kafkatest.ReadAll(t, brokers, commandsTopic) {
		if want := kafkatest.Partition(m.Key, partitions); m.TopicPartition.Partition != want {
			t.Fatalf("the command with key %s is in partition %d, want %d", m.Key, m.TopicPartition.Partition, want)
		}
	}
	state := domain.NewState()
	for _, m := range kafkatest.ReadAll(t, brokers, eventsTopic) {
		var headers []eventlog.Header
		for _, h := range m.Headers {
			headers = append(headers, eventlog.Header{Key: h.Key, Value: h.Value})
		}
		if p, _, ok := eventlog.CommandPosition(headers); !ok || p != m.TopicPartition.Partition {
			t.Fatalf("an event in partition %d answers a command of partition %d (header found: %v): %s", m.TopicPartition.Partition, p, ok, m.Value)
		}
		e, err := domain.DecodeEvent(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := state.Apply(e); err != nil {
			t.Fatalf("the events topic does not fold: %v", err)
		}
	}
	return state
}

// checkEveryInstanceShows checks that every instance answers every value as
// the fold of the events topic has it.
func checkEveryInstanceShows(t *testing.T, state *domain.State, servers ...*server) {
	t.Helper()
	checked := 0
	for id, v := range state.All() {
		for i, s := range servers {
			// A view may be a moment behind the events its processor wrote.
			eventually(t, fmt.Sprintf("instance %d shows value %s as the events topic has it, %v at version %d", i, id, v.Value, v.Version), func() bool {
				r := s.must("GET", "/values/"+id.String(), "")
				var got struct {
					Value   json.Number `json:"value"` // its digits, as written
					Version int64       `json:"version"`
				}
				if r.Status != http.StatusOK || json.Unmarshal([]byte(r.Raw), &got) != nil {
					return false
				}
				return string(got.Value) == v.Value.String() && got.Version == v.Version
			})
		}
		checked++
	}
	t.Logf("%d values, the same on %d instances as in the events topic", checked, len(servers))
}

// cluster is a three-node Kafka cluster of the test's own, started with
// scripts/kafka-up.sh (KAFKA_NODES=3) on free ports, so that killing one of
// its brokers disturbs nobody else.
type cluster struct {
	ownKafka
}

func newCluster(t *testing.T) *cluster {
	return &cluster{newOwnKafka(t, 3)}
}

// kill ends node i (1-3) with SIGKILL and waits until it is gone.
func (c *cluster) kill(node int) {
	c.t.Helper()
	raw, err := os.ReadFile(filepath.Join(c.runDir, fmt.Sprintf("node-%d", node), "kafka.pid"))
	if err != nil {
		c.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		c.t.Fatal(err)
	}
	eventually(c.t, fmt.Sprintf("broker %d (pid %d) is gone", node, pid), func() bool {
		return syscall.Kill(pid, 0) != nil
	})
}

// TestKafkaScaleOutBrokerLoss runs two instances on a three-broker cluster
// (replication factor 3, min.insync.replicas 2) and kills one broker with
// SIGKILL under load, then starts it again. Commands keep being accepted and
// decided throughout, and afterwards every acknowledged command has exactly
// one outcome and every instance shows the fold of the events topic.
func TestKafkaScaleOutBrokerLoss(t *testing.T) {
	kafkatest.Brokers(t) // the shared broker proves Java and the jars are there
	c := newCluster(t)
	c.up()
	commandsTopic, eventsTopic, args := kafkaTopics(c.brokers)
	args = append(args, "-partitions", strconv.Itoa(partitions))
	servers := []*server{launch(t, t.TempDir(), args...), launch(t, t.TempDir(), args...)}
	for _, s := range servers {
		s.waitReady()
	}
	waitShared(t, "two instances share the partitions", servers...)
	load := startClusterLoad(servers, 8)
	load.more(t, 300, "before a broker is lost")

	c.kill(2)
	killed := time.Now()
	load.more(t, 300, "with one broker of three down")
	t.Logf("300 commands acknowledged %s after a broker was killed", time.Since(killed).Round(time.Millisecond))
	c.up()
	load.more(t, 300, "after the broker is back")
	load.stop()

	for _, s := range servers {
		waitCaughtUpLong(s, clusterDeadline)
	}
	checkExactlyOnceKafka(t, c.brokers, commandsTopic, eventsTopic, load.acknowledged)
	state := checkEventPartitions(t, c.brokers, commandsTopic, eventsTopic)
	checkEveryInstanceShows(t, state, servers...)
}
