package domain

import (
	"testing"

	"github.com/google/uuid"
)

func TestEventIDIsTheNameBasedUUID(t *testing.T) {
	for range 1000 {
		c := uuid.New()
		if got, want := EventID(c), uuid.NewSHA1(eventNamespace, c[:]); got != want {
			t.Fatalf("EventID(%s) = %s, want uuid.NewSHA1 = %s", c, got, want)
		}
	}
}

func BenchmarkEventID(b *testing.B) {
	b.ReportAllocs()
	c := uuid.New()
	for b.Loop() {
		c = EventID(c)
	}
}
