package pickle

import (
	"bytes"
	"context"
	"strings"
)

// openers are the opcodes a protocol 0 or 1 pickle plausibly starts with.
const openers = "(]})cNIKJMLFGSUTXVBC"

// Looks reports whether head (the first bytes of a file, a few hundred are
// plenty) is plausibly the start of a pickle stream. Protocol 2 and later
// start with PROTO (0x80, 2..5) followed by an opcode; for protocol 0 and 1
// the head must start with a common opening opcode and decode without
// error for at least a few opcodes (or to STOP).
func Looks(head []byte) bool {
	if len(head) == 0 {
		return false
	}
	if head[0] == byte(opProto) {
		if len(head) < 2 || head[1] < 2 || head[1] > 5 {
			return false
		}
		return len(head) == 2 || opTable[head[2]].name != ""
	}
	if !strings.ContainsRune(openers, rune(head[0])) {
		return false
	}
	m := newMachine(context.Background(), bytes.NewReader(head), Options{MaxOpcodes: 512, MaxStack: 512, MaxMemo: 512, MaxStreams: 1, MaxDepth: 512}, 512)
	m.sniff = true
	m.resetStream()
	end, err := m.runStream(context.Background())
	if err != nil {
		return false
	}
	switch end {
	case endStop:
		return m.streamOps >= 2
	case endLimit:
		return true
	case endBreak:
		// Running out of head is fine; anything else is not a pickle.
		return m.brk.kind == breakTruncated && m.streamOps >= 3
	}
	return false
}
