package kafkalog

import (
	"testing"
	"time"

	"calculator/eventlog"
)

// TestFollowerStalled: a consumer is taken as wedged only when it has been
// silent for followStallAfter and the topic holds records past the
// reader's position in some partition.
func TestFollowerStalled(t *testing.T) {
	now := time.Now()
	f := &follower{next: eventlog.Offsets{0: 10, 1: 4}}
	tests := []struct {
		name   string
		silent time.Duration
		end    eventlog.Offsets
		want   bool
	}{
		{"silent, records past the position", followStallAfter, eventlog.Offsets{0: 10, 1: 5}, true},
		{"silent, at the end", followStallAfter, eventlog.Offsets{0: 10, 1: 4}, false},
		{"not silent long enough", followStallAfter - time.Second, eventlog.Offsets{0: 12, 1: 4}, false},
		{"silent, a partition the reader has not started", 2 * followStallAfter, eventlog.Offsets{0: 10, 1: 4, 2: 1}, true},
	}
	for _, tt := range tests {
		if got := f.stalled(now, now.Add(-tt.silent), tt.end); got != tt.want {
			t.Errorf("%s: stalled = %v, want %v", tt.name, got, tt.want)
		}
	}
}
