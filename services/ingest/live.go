package ingest

// Running reports whether the ingest takes messages (between Start and
// Stop).
func (i *Ingest) Running() bool { return i.running.Load() }

// JournalDepth is the number of journal records that are durable (and so
// acknowledged to their publishers) but not yet checkpointed, that is
// whose state or history is not yet known to be in the store. It is
// cheap: a few atomic loads and the journal's sequence lock.
//
// Sequence numbers are contiguous, but an empty journal seeds them from
// the clock while its checkpoint is still 0, so the checkpoint alone is no
// floor: the records this process knows of are the ones replayed at Start
// and the ones appended since, all directly below the next sequence number.
func (i *Ingest) JournalDepth() int64 {
	st := i.j.Stats()
	next := i.j.NextSeq()
	known := st.Appended + st.Replayed
	var floor uint64 // the sequence number below the first known record
	if next > known {
		floor = next - 1 - known
	}
	floor = max(floor, i.j.Checkpoint())
	durable := i.j.Durable()
	if durable <= floor {
		return 0
	}
	return int64(durable - floor)
}
