package app

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadKafkaConfig reads a file of librdkafka properties (-kafka-config),
// the form a managed Kafka service hands its clients:
//
//	# a comment (or ! a comment)
//	bootstrap.servers=broker.example.com:9092
//	security.protocol=SASL_SSL
//	sasl.mechanisms=PLAIN
//	sasl.username=KEY
//	sasl.password=SECRET
//
// One key=value a line (spaces around the key and the value are dropped,
// the value is taken as it is after that: no quotes, escapes or
// continuation lines); blank lines and comments are skipped. A key given
// twice is an error, as is a line without "=". Whether the properties are
// valid is librdkafka's to say, when the clients are created.
func ReadKafkaConfig(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props, err := parseKafkaConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return props, nil
}

func parseKafkaConfig(r io.Reader) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || key == "" {
			return nil, fmt.Errorf("line %d: want key=value, not %q", n, line)
		}
		if _, twice := props[key]; twice {
			return nil, fmt.Errorf("line %d: %s is given twice", n, key)
		}
		props[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return props, nil
}
