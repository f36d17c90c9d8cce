package gibberish

import (
	"math"
	"unicode/utf8"
)

// StreamWindow is the number of units the streaming scorer averages over.
const StreamWindow = 32

// Stream scores text as it arrives, chunk by chunk (a model's streamed
// answer): it keeps the last StreamWindow units' log-odds and raises an
// alarm the first time their mean reaches the threshold. Chunks may split
// words and UTF-8 sequences anywhere. After the first Write, a Stream
// allocates nothing; each byte costs a table lookup or two. A Stream is
// not safe for concurrent use.
type Stream struct {
	m     *Model
	lx    lexer
	ring  [StreamWindow]float32
	start [StreamWindow]int64
	head  int
	n     int
	sum   float64
	pend  [utf8.UTFMax]byte
	npend int
	off   int64
	units int64
	peak  float64 // highest window sum of log-odds
	// alarmSum is the window sum at which the mean reaches the threshold.
	alarmSum float64
	alarm    bool
	at       int64
}

// StreamStatus is what a Stream has seen so far.
type StreamStatus struct {
	// Bytes and Units fed so far.
	Bytes int64
	Units int64
	// Score is the current window's score (0 until a window is full);
	// Peak the highest window score so far.
	Score, Peak float64
	// Alarm is set once a full window scored as gibberish; Offset is the
	// byte offset where that window starts.
	Alarm  bool
	Offset int64
}

// NewStream returns a streaming scorer using the default model.
func NewStream() *Stream { return Default().NewStream() }

// NewStream returns a streaming scorer using m.
func (m *Model) NewStream() *Stream {
	s := &Stream{m: m}
	s.Reset()
	return s
}

// Reset forgets everything fed so far.
func (s *Stream) Reset() {
	m := s.m
	*s = Stream{m: m, peak: math.Inf(-1), alarmSum: float64(m.mid) * StreamWindow}
	s.lx.m = m
	s.lx.reset()
}

// Write feeds the next chunk. It never fails.
func (s *Stream) Write(p []byte) (int, error) {
	i := 0
	for s.npend > 0 {
		for i < len(p) && s.npend < utf8.UTFMax && !utf8.FullRune(s.pend[:s.npend]) {
			s.pend[s.npend] = p[i]
			s.npend++
			i++
		}
		if !utf8.FullRune(s.pend[:s.npend]) {
			s.off += int64(len(p)) // all of p is pending
			return len(p), nil
		}
		r, w := utf8.DecodeRune(s.pend[:s.npend])
		at := s.off + int64(i) - int64(s.npend) // where pend[0] is
		s.lx.add(r, int(at), w)
		s.drain()
		copy(s.pend[:], s.pend[w:s.npend])
		s.npend -= w
	}
	base := int(s.off)
	for i < len(p) {
		c := p[i]
		if c < utf8.RuneSelf {
			s.lx.add(rune(c), base+i, 1)
			i++
		} else {
			if !utf8.FullRune(p[i:]) {
				s.npend = copy(s.pend[:], p[i:])
				break
			}
			r, w := utf8.DecodeRune(p[i:])
			s.lx.add(r, base+i, w)
			i += w
		}
		if s.lx.nq > 0 {
			s.drain()
		}
	}
	s.off += int64(len(p))
	return len(p), nil
}

// WriteString feeds the next chunk given as a string, without copying it.
func (s *Stream) WriteString(p string) (int, error) {
	i := 0
	for s.npend > 0 && i < len(p) {
		b := [1]byte{p[i]}
		s.Write(b[:])
		i++
	}
	base := int(s.off) - i // where p[0] is
	for i < len(p) {
		c := p[i]
		if c < utf8.RuneSelf {
			s.lx.add(rune(c), base+i, 1)
			i++
		} else {
			if !utf8.FullRuneInString(p[i:]) {
				s.npend = copy(s.pend[:], p[i:])
				i = len(p)
				break
			}
			r, w := utf8.DecodeRuneInString(p[i:])
			s.lx.add(r, base+i, w)
			i += w
		}
		if s.lx.nq > 0 {
			s.drain()
		}
	}
	s.off = int64(base + len(p))
	return len(p), nil
}

// Close ends the text: a word still open is scored.
func (s *Stream) Close() error {
	if s.npend > 0 {
		// An incomplete sequence at the end: its bytes are invalid.
		for k := range s.npend {
			s.lx.add(utf8.RuneError, int(s.off)-s.npend+k, 1)
			s.drain()
		}
		s.npend = 0
	}
	s.lx.flush(int(s.off))
	s.drain()
	return nil
}

func (s *Stream) drain() {
	for k := range s.lx.nq {
		u := &s.lx.q[k]
		z := s.m.logit(&u.f)
		if s.n == StreamWindow {
			s.sum -= float64(s.ring[s.head])
		} else {
			s.n++
		}
		s.ring[s.head] = z
		s.start[s.head] = int64(u.start)
		s.head = (s.head + 1) % StreamWindow
		s.sum += float64(z)
		s.units++
		if s.n == StreamWindow {
			// Compare log-odds, not probabilities: no exp per unit.
			s.peak = max(s.peak, s.sum)
			if !s.alarm && s.sum >= s.alarmSum {
				s.alarm = true
				s.at = s.start[s.head] // the oldest unit of the window
			}
		}
	}
	s.lx.nq = 0
}

// Status reports what the stream has seen so far.
func (s *Stream) Status() StreamStatus {
	st := StreamStatus{Bytes: s.off, Units: s.units, Alarm: s.alarm, Offset: s.at}
	if s.n == StreamWindow {
		st.Score = s.m.prob(s.sum / StreamWindow)
		st.Peak = s.m.prob(s.peak / StreamWindow)
	}
	return st
}
