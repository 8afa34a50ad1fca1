package filelog

import "fmt"

// blockRecords is how many records share one position in a topic's
// in-memory index: it keeps the byte position of records 0, K, 2K, ... (a
// block each) and finds the others by walking the frames of their block
// from its start (the frame header gives each frame's length). 32 keeps the
// index at 8/32 = 0.25 bytes of memory a record (8 with a position for
// each), while a Read of one record reads its whole block, 8 KB of the
// calculator's commands of 250 bytes: 1.9 µs from the page cache instead of
// 1.0 µs, and a history of 64 records spread over the topic 1.8 times as
// slow. 64 would halve the memory again but make those 2.6 µs and 2.9
// times (BENCHMARKS.md, "The file log's sparse index"). It is part of the
// checkpoint's format (checkpoint.go), which records it.
const blockRecords = 32

// sparseIndex is a topic's in-memory index of its records: the byte
// position of the first record of each block of blockRecords, the number of
// records, and the position of the last one (which the index checkpoint
// ties itself to).
type sparseIndex struct {
	blocks  []int64 // blocks[b] is the byte position of record b*blockRecords
	records int64
	last    int64 // the byte position of record records-1; 0 when there is none
}

// add appends a record that starts at byte pos.
func (x *sparseIndex) add(pos int64) {
	if x.records%blockRecords == 0 {
		x.blocks = append(x.blocks, pos)
	}
	x.records++
	x.last = pos
}

// blockEnd is where block b ends: the next block's position, or size (the
// end of the last record) for the last block.
func (x *sparseIndex) blockEnd(b int64, size int64) int64 {
	if b+1 < int64(len(x.blocks)) {
		return x.blocks[b+1]
	}
	return size
}

// blockLen is how many records block b holds: blockRecords, or fewer in the
// last block.
func (x *sparseIndex) blockLen(b int64) int {
	return int(min(x.records-b*blockRecords, blockRecords))
}

// framePositions finds the n frames of a block that buf holds exactly, and
// puts the byte position of each in buf in pos (of length n at least).
//
// The frames it walks past are not checked (Read and Follow check those
// they return) as long as they fill the block exactly. When they do not, a
// frame's length is damaged, and it walks again, checking each frame: the
// first damaged one keeps its position (its decode fails there, as it
// would with a position of its own), and the records after it are found as
// the only chain of intact frames that ends where the block ends with as
// many frames as follow the damaged one. When there is no such chain, the
// records after the damaged one cannot be found.
//
// It returns found = n when every record was found, and otherwise how many
// were, with why the others were not and the position in buf of the frame
// that says so.
func framePositions(buf []byte, n int, pos []int64) (found int, errAt int64, err error) {
	p := 0
	for i := range n {
		pos[i] = int64(p)
		size, err := frameSize(buf[p:])
		if err != nil || size > len(buf)-p {
			break
		}
		p += size
		if i == n-1 && p == len(buf) {
			return n, 0, nil
		}
	}
	// A length is damaged: walk again, checking each frame.
	p = 0
	for i := range n {
		pos[i] = int64(p)
		size, err := checkFrame(buf[p:])
		if err == nil || isVersionError(err) {
			p += size
			continue
		}
		if i == n-1 {
			return n, 0, nil
		}
		q, ok := chainTo(buf, p+1, n-1-i)
		if !ok {
			return i + 1, int64(p), fmt.Errorf("%w: the records after it in its block cannot be found", err)
		}
		for j := i + 1; j < n; j++ {
			pos[j] = int64(q)
			size, _ := frameSize(buf[q:])
			q += size
		}
		return n, 0, nil
	}
	// Every frame is intact, but they do not end where the block does: the
	// file is not the one indexed.
	return 0, 0, fmt.Errorf("%w: the %d records of the block at this byte end at its byte %d, not at its end (%d)", errBadFrame, n, p, len(buf))
}

// chainTo returns the first position from start on where exactly n intact
// frames follow each other to the end of buf.
func chainTo(buf []byte, start, n int) (int, bool) {
	for q := start; q+n*minFrameSize <= len(buf); q++ {
		p, k := q, 0
		for ; k < n; k++ {
			size, err := checkFrame(buf[p:])
			if err != nil && !isVersionError(err) {
				break
			}
			p += size
		}
		if k == n && p == len(buf) {
			return q, true
		}
	}
	return 0, false
}
