package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"calculator/internal/kafkatest"
)

// ownKafka is Kafka of the test's own, one node or more on free ports,
// started with scripts/kafka-up.sh and stopped with scripts/kafka-down.sh
// at the test's end, so that stopping a node disturbs nobody else.
type ownKafka struct {
	t       *testing.T
	env     []string
	runDir  string
	brokers string
}

// newOwnKafka prepares Kafka of the given nodes without starting it.
func newOwnKafka(t *testing.T, nodes int) ownKafka {
	port, controller := freeRange(t, nodes), freeRange(t, nodes)
	k := ownKafka{t: t, runDir: t.TempDir()}
	var addrs []string
	for i := range nodes {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port+i))
	}
	k.brokers = strings.Join(addrs, ",")
	k.env = append(os.Environ(),
		"KAFKA_NODES="+strconv.Itoa(nodes),
		"KAFKA_PORT="+strconv.Itoa(port),
		"KAFKA_CONTROLLER_PORT="+strconv.Itoa(controller),
		"KAFKA_RUN_DIR="+k.runDir,
		"KAFKA_HEAP_OPTS=-Xmx384m -Xms128m",
	)
	t.Cleanup(func() { k.script("kafka-down.sh") })
	return k
}

func (k *ownKafka) script(name string) {
	k.t.Helper()
	cmd := exec.Command("bash", filepath.Join("..", "scripts", name))
	cmd.Env = k.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		k.t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// up starts the nodes that do not run (all of them at first).
func (k *ownKafka) up() {
	k.t.Helper()
	began := time.Now()
	k.script("kafka-up.sh")
	k.t.Logf("kafka-up on %s took %s", k.brokers, time.Since(began).Round(time.Millisecond))
}

// broker is a Kafka broker of the test's own.
type broker struct {
	ownKafka
	cmdline []string // the broker's command line, to start it again on the same data
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeRange returns the first of n consecutive ports that are free now.
func freeRange(t *testing.T, n int) int {
	for range 100 {
		base := freePort(t)
		free := true
		for p := base + 1; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// newBroker prepares a broker on free ports without starting it.
func newBroker(t *testing.T) *broker {
	return &broker{ownKafka: newOwnKafka(t, 1)}
}

func (b *broker) pid() int {
	b.t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.runDir, "kafka.pid"))
	if err != nil {
		b.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		b.t.Fatal(err)
	}
	return pid
}

// stop stops the broker (SIGTERM, as an operator would) and keeps its data.
func (b *broker) stop() {
	b.t.Helper()
	pid := b.pid()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		b.t.Fatal(err)
	}
	b.cmdline = strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		b.t.Fatal(err)
	}
	end := time.Now().Add(60 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if p, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && bytes.Contains(p, []byte(") Z ")) {
			break // exited, not yet reaped by its parent
		}
		if time.Now().After(end) {
			b.t.Fatalf("broker pid %d still runs 60s after SIGTERM", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// start starts the stopped broker again on the same log directory, and
// waits until it answers.
func (b *broker) start() {
	b.t.Helper()
	out, err := os.OpenFile(filepath.Join(b.runDir, "logs", "kafka.restart.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(b.cmdline[0], b.cmdline[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	go cmd.Wait() // reap it when kafka-down stops it
	if err := os.WriteFile(filepath.Join(b.runDir, "kafka.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		b.t.Fatal(err)
	}
	eventually(b.t, "the restarted broker accepts connections", func() bool {
		return kafkatest.Reachable(b.brokers, time.Second) == nil
	})
}

// TestKafkaOutages starts the product before its broker, then stops and
// restarts the broker under load. While the broker is away, commands get
// 503 within the append timeout and /readyz says why; once it is back, the
// same process serves again by itself, no acknowledged command is lost, and
// every command has exactly one outcome.
func TestKafkaOutages(t *testing.T) {
	kafkatest.Brokers(t) // the shared broker proves Java and the jars are there
	b := newBroker(t)
	commandsTopic, eventsTopic, args := kafkaTopics(b.brokers)

	// 1. No broker yet: the process starts, is not ready, and says why.
	s := launch(t, t.TempDir(), args...)
	t.Cleanup(func() {
		if t.Failed() {
			s.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines say where it waits
			select {
			case <-s.exited:
			case <-time.After(10 * time.Second):
			}
			var lines []string
			for _, line := range strings.Split(s.logText(), "\n") {
				if !strings.Contains(line, "answering 503") {
					lines = append(lines, line)
				}
			}
			t.Logf("calculator's log (without the 503s):\n%s", tail(strings.Join(lines, "\n"), 2000))
			broker, _ := os.ReadFile(filepath.Join(b.runDir, "logs", "server.log"))
			restarted, _ := os.ReadFile(filepath.Join(b.runDir, "logs", "kafka.restart.out"))
			t.Logf("broker's log:\n%s\n%s", tail(string(broker), 80), tail(string(restarted), 30))
		}
	})
	r := s.must("GET", "/readyz", "")
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(r.Raw, b.brokers) {
		t.Fatalf("readyz without a broker = %d %s, want 503 naming the brokers", r.Status, r.Raw)
	}
	began := time.Now()
	if r := s.must("POST", "/values", `{"value":1}`); r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("POST without a broker = %d %s, want 503 with Retry-After", r.Status, r.Raw)
	}
	if took := time.Since(began); took > 7*time.Second {
		t.Errorf("POST without a broker took %s to answer 503, want the 5s append timeout", took)
	}

	// 2. The broker comes: the same process becomes ready.
	b.up()
	s.waitReady()

	// 3. Under load, the broker stops.
	acknowledged := map[string]bool{}
	l := startLoad(s, 8, acknowledged, nil)
	eventually(t, "300 commands acknowledged", func() bool { return l.acks.Load() >= 300 })
	b.stop()
	stoppedAt := time.Now()
	eventually(t, "readyz reports the broker unreachable", func() bool {
		r := s.must("GET", "/readyz", "")
		return r.Status == http.StatusServiceUnavailable && strings.Contains(r.Raw, `"reachable":false`)
	})
	t.Logf("readyz said 503 %s after the broker stopped", time.Since(stoppedAt).Round(time.Millisecond))
	eventually(t, "commands get 503", func() bool { return l.unavailable.Load() >= 8 })
	if slowest := time.Duration(l.slowest503.Load()); slowest > 7*time.Second {
		t.Errorf("the slowest 503 took %s, want the 5s append timeout", slowest)
	}
	acksWhileDown := l.acks.Load()
	// A keyed command sent during the outage gets a 503 that says how to
	// retry; it may still be stored once the broker is back.
	r = s.keyed("POST", "/values", `{"value":42}`, "during-the-outage")
	if detail, _ := r.Body["detail"].(string); r.Status != http.StatusServiceUnavailable || !strings.Contains(detail, "same Idempotency-Key") {
		t.Fatalf("keyed POST while the broker is down = %d %s, want 503 saying to retry with the same Idempotency-Key", r.Status, r.Raw)
	}

	// 4. The broker comes back on the same data: the process recovers by itself.
	b.start()
	restartedAt := time.Now()
	eventually(t, "commands acknowledged again", func() bool { return l.acks.Load() >= acksWhileDown+200 })
	t.Logf("202s again %s after the broker restarted; %d 503s during the outage, the slowest after %s",
		time.Since(restartedAt).Round(time.Millisecond), l.unavailable.Load(), time.Duration(l.slowest503.Load()).Round(time.Millisecond))
	l.stop()
	// The client retries its keyed command until it is acknowledged.
	var retried response
	eventually(t, "the keyed command is acknowledged on retry", func() bool {
		retried = s.keyed("POST", "/values", `{"value":42}`, "during-the-outage")
		return retried.Status == http.StatusAccepted
	})
	keyedID := retried.Body["command_id"].(string)
	acknowledged[keyedID] = true
	waitCaughtUpLong(s, 90*time.Second)
	// The view follows the processor's last transaction a moment later.
	for _, id := range l.values {
		eventually(t, "value "+id+" is in the view", func() bool {
			return s.must("GET", "/values/"+id, "").Status == http.StatusOK
		})
	}
	if _, err := s.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	checkExactlyOnceKafka(t, b.brokers, commandsTopic, eventsTopic, acknowledged)
	// However often it reached the topic, the keyed command is one command
	// (and checkExactlyOnceKafka found it one outcome).
	ids := keyedCommands(t, kafkaRecords(kafkatest.ReadAll(t, b.brokers, commandsTopic)))["during-the-outage"]
	for _, id := range ids {
		if id != keyedID {
			t.Errorf("a record of the keyed command has id %s, the retry was answered with %s", id, keyedID)
		}
	}
	t.Logf("the command sent during the outage and retried is %d record(s) of command %s", len(ids), keyedID)
}

// waitCaughtUpLong is waitCaughtUp with a longer deadline: after an outage
// the processor may sit out a failed transaction and a backoff first.
func waitCaughtUpLong(s *server, within time.Duration) {
	s.t.Helper()
	end := time.Now().Add(within)
	for {
		r := s.must("GET", "/readyz", "")
		proc, _ := r.Body["processor"].(map[string]any)
		if r.Status == http.StatusOK && proc["commands_behind"] == 0.0 {
			return
		}
		if time.Now().After(end) {
			s.t.Fatalf("the processor has not caught up within %s: %s", within, r.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tail returns the last n lines of text.
func tail(text string, n int) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
