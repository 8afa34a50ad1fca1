package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"calculator/internal/kafkatest"
)

// TestKafkaSASL runs the binary against a cluster that wants SASL/PLAIN, as
// a managed Kafka does (there over TLS: SASL_SSL), with the credentials in
// a -kafka-config file: it serves the walkthrough; the same with a wrong
// password is not ready and says why; and -replication-factor reaches the
// broker (2 on a single broker is refused).
//
// The broker is one of the test's own, on free ports in a temporary
// directory, from the jars that scripts/kafka-up.sh fetched (the shared
// broker of KAFKA_BROKERS has no SASL listener and is not touched).
func TestKafkaSASL(t *testing.T) {
	kafkatest.Brokers(t) // the rule of the Kafka tests: skip, or fail in CI, without a broker
	if testing.Short() {
		t.Skip("starts a Kafka broker of its own (-short)")
	}
	brokers := startSASLBroker(t, "calc", "calc-secret")

	dir := t.TempDir()
	good := writeProperties(t, dir, "good.properties",
		"# a managed cluster's client.properties, with SASL_SSL in place of SASL_PLAINTEXT",
		"bootstrap.servers="+brokers,
		"security.protocol=SASL_PLAINTEXT",
		"sasl.mechanisms=PLAIN",
		"sasl.username=calc",
		"sasl.password=calc-secret")
	commands, events, _ := kafkaTopics(brokers)
	// No -brokers: bootstrap.servers comes from the file.
	s := start(t, t.TempDir(), "-kafka-config", good, "-replication-factor", "1",
		"-commands-topic", commands, "-events-topic", events)
	_, valueID := s.create(6)
	s.update(valueID, "MULTIPLY", 7)
	if v := s.waitValue(valueID, 2); v["value"] != 42.0 {
		t.Errorf("value %v, want 42", v["value"])
	}
	ready := s.must("GET", "/readyz", "")
	if log, _ := ready.Body["log"].(map[string]any); log["brokers"] != brokers {
		t.Errorf("/readyz says the brokers are %v, want %s (from the file)", log["brokers"], brokers)
	}

	bad := writeProperties(t, dir, "bad.properties",
		"security.protocol=SASL_PLAINTEXT", "sasl.mechanisms=PLAIN", "sasl.username=calc", "sasl.password=wrong")
	commands, events, _ = kafkaTopics(brokers)
	refused := launch(t, t.TempDir(), "-brokers", brokers, "-kafka-config", bad,
		"-commands-topic", commands, "-events-topic", events)
	eventually(t, "the wrong password is logged as an authentication failure", func() bool {
		return strings.Contains(refused.logText(), "Authentication failed")
	})
	if r := refused.must("GET", "/readyz", ""); r.Status != http.StatusServiceUnavailable {
		t.Errorf("/readyz with a wrong password: %d %s", r.Status, r.Raw)
	}

	commands, events, _ = kafkaTopics(brokers)
	twice := launch(t, t.TempDir(), "-kafka-config", good, "-replication-factor", "2",
		"-commands-topic", commands, "-events-topic", events)
	eventually(t, "/readyz says the replication factor is refused", func() bool {
		r := twice.must("GET", "/readyz", "")
		log, _ := r.Body["log"].(map[string]any)
		msg, _ := log["error"].(string)
		return r.Status == http.StatusServiceUnavailable && strings.Contains(strings.ToLower(msg), "replication factor")
	})
}

func writeProperties(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startSASLBroker starts a single-node KRaft broker whose only client
// listener is SASL_PLAINTEXT with PLAIN, knowing user with password, and
// returns its address once it answers an authenticated metadata request.
// The broker is killed, and its directory removed, when the test ends.
func startSASLBroker(t *testing.T, user, password string) string {
	t.Helper()
	java, err := exec.LookPath(cmpOr(os.Getenv("JAVA"), "java"))
	if err != nil {
		skipOrFail(t, "no java: %v", err)
	}
	cache := cmpOr(os.Getenv("KAFKA_CACHE"), filepath.Join(os.Getenv("HOME"), ".cache", "calculator-kafka"))
	lib := filepath.Join(cache, "lib")
	if _, err := os.Stat(filepath.Join(lib, ".stamp")); err != nil {
		skipOrFail(t, "no Kafka jars in %s (scripts/kafka-up.sh fetches them): %v", lib, err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	template, err := os.ReadFile(filepath.Join(root, "kafka", "server.properties.tmpl"))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	port, controller := strconv.Itoa(freePort(t)), strconv.Itoa(freePort(t))
	// The template rendered for one node, as scripts/kafka-up.sh does.
	props := strings.NewReplacer("@NODE_ID@", "1", "@PORT@", port, "@CONTROLLER_PORT@", controller,
		"@QUORUM@", "controller.quorum.bootstrap.servers=127.0.0.1:"+controller, "@DATA_DIR@", filepath.Join(dir, "data"),
		"@REPLICATION@", "1", "@MIN_ISR@", "1").Replace(string(template))
	// Later lines win: the template's PLAINTEXT listener becomes SASL.
	props += fmt.Sprintf(`
listeners=SASL_PLAINTEXT://127.0.0.1:%[1]s,CONTROLLER://127.0.0.1:%[2]s
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:%[1]s
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=PLAIN
sasl.mechanism.inter.broker.protocol=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-secret" user_broker="broker-secret" user_%[3]s="%[4]s";
`, port, controller, user, password)
	propsFile := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(propsFile, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	rand.Read(id)
	jvm := func(args ...string) *exec.Cmd {
		cmd := exec.Command(java, append([]string{"-Xmx256m", "-Xms64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
			"-Djava.awt.headless=true", "-Dlog4j2.configurationFile=" + filepath.Join(root, "kafka", "log4j2.yaml"),
			"-Dkafka.logs.dir=" + filepath.Join(dir, "logs"), "-cp", filepath.Join(lib, "*")}, args...)...)
		return cmd
	}
	if out, err := jvm("kafka.tools.StorageTool", "format", "--standalone", "-t", base64.RawURLEncoding.EncodeToString(id), "-c", propsFile).CombinedOutput(); err != nil {
		t.Fatalf("format the broker's storage: %v\n%s", err, out)
	}
	broker := jvm("kafka.Kafka", propsFile)
	out, err := os.Create(filepath.Join(dir, "kafka.out"))
	if err != nil {
		t.Fatal(err)
	}
	broker.Stdout, broker.Stderr = out, out
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- broker.Wait() }()
	t.Cleanup(func() {
		broker.Process.Kill()
		<-exited
		out.Close()
	})

	address := "127.0.0.1:" + port
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{
		"bootstrap.servers": address, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
		"sasl.username": user, "sasl.password": password, "log_level": 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	end := time.Now().Add(3 * time.Minute) // a JVM's start on a busy machine
	for {
		select {
		case err := <-exited:
			exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "logs", "server.log"))
			t.Fatalf("the SASL broker exited: %v\n%s", err, tail(string(log), 40))
		default:
		}
		if md, err := admin.GetMetadata(nil, true, 2000); err == nil && len(md.Brokers) > 0 {
			return address
		}
		if time.Now().After(end) {
			t.Fatalf("the SASL broker did not answer within 3 minutes (logs in %s)", dir)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// skipOrFail skips the test, or fails it in CI, where it must run.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
