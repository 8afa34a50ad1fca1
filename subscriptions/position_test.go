package subscriptions

import (
	"maps"
	"testing"

	"calculator/eventlog"
)

func TestPositions(t *testing.T) {
	tests := []struct {
		cursor eventlog.Offsets
		id     string
	}{
		{eventlog.Offsets{0: 43}, "42"},
		{eventlog.Offsets{0: 1}, "0"},
		{eventlog.Offsets{0: 0}, "-1"},
		{eventlog.Offsets{}, "-1"},
		{eventlog.Offsets{1: 8}, "1:7"},
		{eventlog.Offsets{0: 42, 1: 8, 2: 0}, "0:41,1:7"},
	}
	for _, tt := range tests {
		if got := formatID(tt.cursor); got != tt.id {
			t.Errorf("formatID(%v) = %q, want %q", tt.cursor, got, tt.id)
		}
		back, err := cursorAfter(tt.id)
		if err != nil {
			t.Errorf("cursorAfter(%q): %v", tt.id, err)
			continue
		}
		// Resuming from the id restarts every partition where the
		// cursor was (a missing partition means offset 0).
		for p, o := range tt.cursor {
			if back[p] != o {
				t.Errorf("cursorAfter(%q) = %v, want %v", tt.id, back, tt.cursor)
			}
		}
	}
}

func TestParsePositions(t *testing.T) {
	good := map[string]eventlog.Offsets{
		"0":       {0: 0},
		"17":      {0: 17},
		"3:5":     {3: 5},
		"0:1,2:3": {0: 1, 2: 3},
	}
	for s, want := range good {
		got, err := cursorFrom(s)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("cursorFrom(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "x", "-1", "1:", ":1", "1:2:3", "0:1,0:2", "-1:0", "1.5", "99999999999999999999"} {
		if got, err := cursorFrom(s); err == nil {
			t.Errorf("cursorFrom(%q) = %v, want an error", s, got)
		}
	}
}

// The id of a record's message names its position, and resuming after it
// starts at the next record of that partition.
func TestPositionID(t *testing.T) {
	for _, tt := range []struct {
		at position
		id string
	}{
		{position{0, 0}, "0"},
		{position{0, 42}, "42"},
		{position{1, 42}, "1:42"},
		{position{12, 7}, "12:7"},
	} {
		if got := tt.at.id(); got != tt.id {
			t.Errorf("%+v: id %q, want %q", tt.at, got, tt.id)
		}
		cursor, err := cursorAfter(tt.id)
		if err != nil || len(cursor) != 1 || cursor[tt.at.partition] != tt.at.offset+1 {
			t.Errorf("cursorAfter(%q) = %v, %v; want partition %d at %d", tt.id, cursor, err, tt.at.partition, tt.at.offset+1)
		}
	}
}
