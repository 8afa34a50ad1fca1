package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// env is an environment for run and parseConfig.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestHelp(t *testing.T) {
	// A malformed variable does not stand in the way of -h.
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-h"}, env("CALC_PARTITIONS", "abc"), &stdout, &stderr); code != 0 {
		t.Fatalf("-h: exit %d, stderr %q", code, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("-h wrote to stderr: %q", stderr.String())
	}
	help := stdout.String()
	first, _, _ := strings.Cut(help, "\n")
	if !strings.Contains(first, "distributed calculator") || !strings.Contains(first, "README") {
		t.Errorf("the first line of -h does not say what the program is and where to read more: %q", first)
	}
	for flag, variable := range environment {
		if !strings.Contains(help, "  -"+flag+" ") || !strings.Contains(help, "["+variable+"]") {
			t.Errorf("-h does not show -%s with %s:\n%s", flag, variable, help)
		}
	}
	if n := strings.Count(help, "  -"); n != len(environment) {
		t.Errorf("-h shows %d flags, the environment table has %d", n, len(environment))
	}
}

func TestUnusableConfigurationSaysWhatOnce(t *testing.T) {
	dir := t.TempDir()
	noBrokers := filepath.Join(dir, "sasl.properties")
	if err := os.WriteFile(noBrokers, []byte("security.protocol=SASL_SSL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken.properties")
	if err := os.WriteFile(broken, []byte("# fine\nsasl.username\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		env  []string
		want string
	}{
		{nil, []string{"CALC_PARTITIONS", "abc"}, `invalid value "abc" for CALC_PARTITIONS (-partitions)`},
		{[]string{"-partitions", "abc"}, nil, `invalid value "abc" for flag -partitions`},
		{[]string{"-partitions", "0"}, nil, "-partitions must be at least 1, not 0"},
		{nil, []string{"CALC_PARTITIONS", "0"}, "CALC_PARTITIONS=0 must be at least 1, not 0"},
		{nil, []string{"CALC_READ_TIMEOUT", "10"}, `invalid value "10" for CALC_READ_TIMEOUT (-read-timeout)`},
		{[]string{"-idle-timeout", "-1s"}, nil, "-idle-timeout must be more than 0, not -1s"},
		{nil, []string{"CALC_MAX_CONNS", "0"}, "CALC_MAX_CONNS=0 must be at least 1"},
		{nil, []string{"CALC_LOG_LEVEL", "loud"}, `invalid value "loud" for CALC_LOG_LEVEL (-log-level)`},
		{[]string{"-log-level", "panic"}, nil, "-log-level must be trace, debug, info, warn or error, not panic"},
		{nil, []string{"CALC_REPLICATION_FACTOR", "-1"}, "CALC_REPLICATION_FACTOR=-1 must be 0 (the broker's default) or more"},
		{[]string{"serve"}, nil, `unexpected argument "serve"`},
		{[]string{"-addr", ":1", "extra"}, nil, `unexpected argument "extra"`},
		{[]string{"-nope"}, nil, "flag provided but not defined: -nope"},
		{[]string{"-kafka-config", filepath.Join(dir, "missing")}, nil, "-kafka-config: open " + filepath.Join(dir, "missing")},
		{nil, []string{"CALC_KAFKA_CONFIG", broken, "KAFKA_BROKERS", "b:9092"}, "CALC_KAFKA_CONFIG=" + broken + ": " + broken + `: line 2: want key=value, not "sasl.username"`},
		{[]string{"-kafka-config", noBrokers}, nil, "-kafka-config is for Kafka: give -brokers too, or bootstrap.servers in " + noBrokers},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, env(c.env...), &stdout, &stderr)
		if code != exitUsage {
			t.Errorf("%v %v: exit %d, want %d", c.args, c.env, code, exitUsage)
		}
		msg := stderr.String()
		if !strings.HasPrefix(msg, "calculator: "+c.want) {
			t.Errorf("%v %v: stderr %q, want it to start with %q", c.args, c.env, msg, "calculator: "+c.want)
		}
		if strings.Count(msg, "calculator: ") != 1 || strings.Count(msg, "\n") != 2 {
			t.Errorf("%v %v: the error is not said exactly once, in one line and a hint: %q", c.args, c.env, msg)
		}
		if stdout.Len() > 0 {
			t.Errorf("%v %v: wrote to stdout: %q", c.args, c.env, stdout.String())
		}
	}
}

func TestFlagsWinOverTheEnvironment(t *testing.T) {
	var out bytes.Buffer
	cfg, level, err := parseConfig([]string{"-partitions", "3", "-log-level", "debug"},
		env("CALC_PARTITIONS", "abc", "CALC_LOG_LEVEL", "loud", "CALC_MAX_CONNS", "7", "CALC_ADDR", "", "CALC_REPLICATION_FACTOR", "3"), &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Partitions != 3 || level.String() != "debug" || cfg.MaxConns != 7 || cfg.Addr != "localhost:3030" || cfg.ReplicationFactor != 3 {
		t.Errorf("partitions %d, level %s, max conns %d, addr %q (an empty variable is unset), replication factor %d",
			cfg.Partitions, level, cfg.MaxConns, cfg.Addr, cfg.ReplicationFactor)
	}
}

func TestKafkaConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client.properties")
	props := "# from the cloud console\nbootstrap.servers = pkc-1.example.com:9092\nsecurity.protocol=SASL_SSL\n\nsasl.mechanisms=PLAIN\nsasl.password=a=b\n"
	if err := os.WriteFile(path, []byte(props), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := parseConfig(nil, env("CALC_KAFKA_CONFIG", path), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"bootstrap.servers": "pkc-1.example.com:9092", "security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN", "sasl.password": "a=b"}
	if len(cfg.KafkaConfig) != len(want) {
		t.Errorf("properties %v, want %v", cfg.KafkaConfig, want)
	}
	for k, v := range want {
		if cfg.KafkaConfig[k] != v {
			t.Errorf("%s = %q, want %q", k, cfg.KafkaConfig[k], v)
		}
	}
}

func TestAFailedStartIsSaidOnce(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-addr", busy.Addr().String(), "-data-dir", t.TempDir()}, env(), &stdout, &stderr)
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	if n := strings.Count(stderr.String(), "address already in use"); n != 1 {
		t.Errorf("the error is said %d times, want once:\n%s", n, stderr.String())
	}
}

func TestDurationsInTheLogCarryTheirUnit(t *testing.T) {
	var buf bytes.Buffer
	logger := newLogger(&buf, zerolog.InfoLevel)
	logger.Info().Dur("took", 1500*time.Millisecond).Msg("replayed")
	if !strings.Contains(buf.String(), `"took":"1.5s"`) {
		t.Errorf("log line %s, want took as 1.5s", buf.String())
	}
}

// TestTheReadmeListsEveryFlag holds README.md's configuration table to the
// flags: the same flags, each with its variable.
func TestTheReadmeListsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `-([a-z-]+)` \\| `([A-Z_]+)` \\|")
	listed := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		listed[m[1]] = m[2]
	}
	for flag, variable := range environment {
		if listed[flag] != variable {
			t.Errorf("README.md lists -%s with %q, want %s", flag, listed[flag], variable)
		}
	}
	for flag := range listed {
		if _, ok := environment[flag]; !ok {
			t.Errorf("README.md lists -%s, which is not a flag", flag)
		}
	}
}
