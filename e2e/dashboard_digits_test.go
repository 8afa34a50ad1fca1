package e2e

import (
	"strings"
	"testing"
)

// TestDashboardShowsTheServersDigits: the page shows numbers with exactly
// the digits the server wrote, never through a JavaScript number (a
// double): values typed in its forms, values changed by another client,
// results in the event log, numbers beyond a double's range.
func TestDashboardShowsTheServersDigits(t *testing.T) {
	s := start(t, t.TempDir())
	b := openDashboard(t, s)
	b.until("the process is ready", `document.querySelector('#state').textContent === 'ready'`)
	selected := func(want string) string {
		return `document.querySelector('#selected-value').textContent === '` + want + `'`
	}

	b.create("9007199254740993")
	b.waitCommand("applied")
	b.until("2^53+1 as typed", selected("9007199254740993"))
	id := eval[string](b, `document.querySelector('#selected-id').textContent`)
	b.update(id, "ADD", ".1")
	b.waitCommand("applied")
	b.until("2^53+1 ADD 0.1", selected("9007199254740993.1"))
	b.until("the event log shows the operand and the result", eventRow(1)+`?.textContent.includes('ADD 0.1 → 9007199254740993.1')`)
	if steps := eval[string](b, latestCommand+`.querySelector('.steps').textContent`); !strings.Contains(steps, "applied: 9007199254740993.1 (v2)") {
		t.Errorf("the command's steps say %q", steps)
	}

	// Another client: 0.1 ADD 0.2 is 0.3 in the values table.
	_, other := s.create(0.1)
	s.update(other, "ADD", 0.2)
	b.until("0.1 ADD 0.2 in the values table", `document.querySelector('#values tr[data-value-id="`+other+`"] td.num')?.textContent === '0.3'`)

	// Beyond a double: 1e400 MULTIPLY 10.
	b.create("1e400")
	b.waitCommand("applied")
	b.until("1e400 as the server writes it", selected("1e+400"))
	id = eval[string](b, `document.querySelector('#selected-id').textContent`)
	b.update(id, "MULTIPLY", "10")
	b.waitCommand("applied")
	b.until("1e400 MULTIPLY 10", selected("1e+401"))

	// A number the server cannot hold: refused, with why.
	b.create("0.12345678901234567890123456789012345")
	b.until("the command is refused", latestCommand+`?.dataset.status === 'refused'`)
	b.until("the refusal says why", latestCommand+`.textContent.includes('more than 34 significant digits')`)

	// Browsers without JSON.parse's source text fall back to quoting the
	// numbers: the same digits.
	if got := eval[string](b, `JSON.parse(quoteNumbers('{"value":9007199254740993,"result":1e+700,"message":"{\\"value\\":1}","version":2}')).value`); got != "9007199254740993" {
		t.Errorf("quoteNumbers: value %q", got)
	}
	if got := eval[string](b, `JSON.stringify(JSON.parse(quoteNumbers('{"data":{"value":-0.5,"result":1e+700},"message":"{\\"value\\":1}"}')))`); got != `{"data":{"value":"-0.5","result":"1e+700"},"message":"{\"value\":1}"}` {
		t.Errorf("quoteNumbers: %s", got)
	}
}
