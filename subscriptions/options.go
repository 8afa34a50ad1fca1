package subscriptions

import "time"

// DefaultCapacity is how many command statuses are kept by default: at least
// the most recent 1,000,000 (2^20).
const DefaultCapacity = 1 << 20

// Options tune the Hub; the zero value means the defaults.
type Options struct {
	// Capacity is how many command statuses are kept (DefaultCapacity).
	Capacity int
	// Heartbeat is the period of the comment line on idle streams (15 s).
	Heartbeat time.Duration
	// Retry is the reconnection delay suggested to clients (1 s).
	Retry time.Duration
	// WriteTimeout bounds each write to a stream; a client that does not
	// read for that long is disconnected (10 s).
	WriteTimeout time.Duration
	// Buffer is how many events may wait for one subscriber before it is
	// dropped (4096).
	Buffer int
	// CommandWait is how long a command stream waits for a command id that
	// is not known yet (30 s).
	CommandWait time.Duration
	// ReadyWait is how long a stream that is opened while the statuses are
	// being rebuilt (a restart's replay) waits for them before it is
	// answered 503 (10 s; negative: no wait). A browser's EventSource
	// reconnects by itself after a server restart, but gives up for good
	// on any answer other than 200: a 503 in the moments after a restart
	// would end the subscription.
	ReadyWait time.Duration
	// MaxCatchUps bounds the streams that read old events from the log at the
	// same time; others wait for a turn (8).
	MaxCatchUps int
	// SendBuffer is the kernel send buffer of a stream's connection, in
	// bytes (256 KiB; negative: the kernel's default). It needs ConnContext
	// on the http.Server.
	SendBuffer int
}

func (o Options) withDefaults() Options {
	if o.Capacity <= 0 {
		o.Capacity = DefaultCapacity
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Buffer <= 0 {
		o.Buffer = 4096
	}
	if o.CommandWait <= 0 {
		o.CommandWait = 30 * time.Second
	}
	if o.ReadyWait == 0 {
		o.ReadyWait = 10 * time.Second
	}
	if o.MaxCatchUps <= 0 {
		o.MaxCatchUps = 8
	}
	if o.SendBuffer == 0 {
		o.SendBuffer = 256 << 10
	}
	return o
}
