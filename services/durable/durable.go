// Package durable names the contract between the ingest and the broker:
// an MQTT acknowledgement leaves only once the journal has the message.
// Both import it, neither imports the other.
//
// The ingest's broker hook journals a publish and, instead of waiting for
// the fsync, hands the publishing connection the message's Hold; the
// broker's connections are Holders and write the PUBACK (and everything
// after it) only when the hold is ready, so mochi reads on meanwhile. A
// hold that fails ends in a negative PUBACK or a closed connection, never
// in an acknowledgement.
package durable

// Hold is the durability of one journaled message.
type Hold interface {
	// Ready reports, without blocking, whether the message is on disk.
	Ready() bool
	// Wait blocks until it is, or returns why it never will be.
	Wait() error
}

// Holder is a connection whose writes can wait behind a Hold: the writes
// that follow HoldWrites go out only once h is ready, in order.
type Holder interface {
	HoldWrites(h Hold)
}

// IngestedClient is the ID of the broker's in-process client that
// delivers messages the ingest journaled itself (device packets, which
// carry their measurement time): the ingest's hook lets its publishes
// pass without journaling them again.
const IngestedClient = "piot-ingested"
