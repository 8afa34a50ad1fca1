package kafkatest

import (
	"testing"

	"github.com/google/uuid"
)

// Values from the Java client's own test (UtilsTest.testMurmur2).
func TestMurmur2(t *testing.T) {
	for key, want := range map[string]int32{
		"21":                         -973932308,
		"foobar":                     -790332482,
		"a-little-bit-long-string":   -985981536,
		"a-little-bit-longer-string": -1486304829,
		"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
		"abc": 479470107,
	} {
		if got := murmur2([]byte(key)); got != want {
			t.Errorf("murmur2(%q) = %d, want %d", key, got, want)
		}
	}
}

// The partitioner agrees with librdkafka's murmur2_random on a real topic.
func TestPartitionMatchesTheBroker(t *testing.T) {
	brokers := Brokers(t)
	topic := Topic("murmur2")
	CreateTopic(t, brokers, topic, 6)
	for range 20 {
		key := []byte(uuid.NewString())
		if got, want := Produce(t, brokers, topic, key, []byte("x")).Partition, Partition(key, 6); got != want {
			t.Errorf("key %s went to partition %d, Partition says %d", key, got, want)
		}
	}
}
