package kafkalog

import (
	"strings"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/rs/zerolog"
)

// TestProperties: the properties of Config reach every client over the
// Log's defaults, but neither over Brokers nor over what a client sets for
// its guarantees; a go.* key is refused. New contacts nobody, so this needs
// no broker.
func TestProperties(t *testing.T) {
	if _, err := New(Config{Brokers: "127.0.0.1:1", Properties: map[string]string{"go.logs.channel.enable": "false"}, Logger: zerolog.Nop()}); err == nil ||
		!strings.Contains(err.Error(), "go.logs.channel.enable") {
		t.Errorf("a go.* property: %v, want an error naming it", err)
	}

	l, err := New(Config{Brokers: "127.0.0.1:1", Logger: zerolog.Nop(), Properties: map[string]string{
		"security.protocol":  "SASL_SSL",
		"sasl.mechanisms":    "PLAIN",
		"sasl.username":      "calc",
		"sasl.password":      "secret",
		"client.id":          "mine",
		"bootstrap.servers":  "elsewhere:9092",
		"enable.idempotence": "false",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cm := l.clientConfig("producer", kafka.ConfigMap{"enable.idempotence": true})
	for key, want := range map[string]kafka.ConfigValue{
		"security.protocol":    "SASL_SSL",    // given
		"client.id":            "mine",        // over the Log's default
		"bootstrap.servers":    "127.0.0.1:1", // Brokers wins
		"enable.idempotence":   true,          // the client's guarantee wins
		"reconnect.backoff.ms": 100,           // a default that was not overridden
	} {
		if got := (*cm)[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
}
