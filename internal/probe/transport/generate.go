package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is one generation.
type Request struct {
	Model string
	// System is sent as a system message (chat) or the system field
	// (Ollama generate); empty sends none, so the model's own system
	// prompt applies.
	System string
	// Messages is the conversation (chat). Ignored when Raw is set.
	Messages []Message
	// Raw, when set, asks for a plain completion of this text with no
	// chat template (Ollama /api/generate with raw, OpenAI
	// /v1/completions): memorisation tests need the model to continue
	// text, not to answer it.
	Raw string
	// Seed, Temperature and NumPredict are the decoding options; the probe
	// always sets them (temperature 0 and a fixed seed by default).
	Seed        int
	Temperature float64
	NumPredict  int
	// Logprobs asks for per-token log-probabilities where the server has
	// them (see Server.Logprobs).
	Logprobs bool
	// NoStream asks for the whole answer in one piece (Ollama's and
	// OpenAI's "stream": false). The same bounded reader handles it, and a
	// server that streams anyway is still cut when it runs away; what is
	// lost is the time to the first token, which then equals the latency.
	// Streaming costs a client wake-up per token, more CPU than the rest of
	// the probe's work on an answer.
	NoStream bool
	// OnFirstToken, when set, is called once, from the reading goroutine,
	// when the first piece of answer text arrives.
	OnFirstToken func(ttft time.Duration)
}

func (r Request) stream() bool { return !r.NoStream }

// Cut reasons: why the client ended a stream early.
const (
	CutAnswerCap = "answer_cap" // Limits.MaxAnswerBytes reached
	CutRunaway   = "runaway"    // far more chunks than NumPredict asked for
)

// Response is one finished generation.
type Response struct {
	Text string
	// Tokens is the number of generated tokens the server reported (or the
	// number of stream chunks when it reported none); PromptTokens the
	// prompt's.
	Tokens       int
	PromptTokens int
	// DoneReason is the server's stop reason ("stop", "length", ...).
	DoneReason string
	// Cut is set when the client ended the stream (CutAnswerCap,
	// CutRunaway); Text holds what arrived until then.
	Cut string
	// TTFT is the time to the first answer text; Latency the whole request.
	TTFT, Latency time.Duration
	// QueueWait is the time the server reports the request waited before
	// it was worked on (Ollama: total - load - prompt eval - eval), or -1
	// when the server reports no durations.
	QueueWait time.Duration
	// Logprobs are the per-token log-probabilities, when asked for and
	// available (at most Limits.MaxLogprobs).
	Logprobs []float64
}

// Generate runs one generation, streamed, and returns the whole answer.
// On error the Response holds what arrived before it (possibly nothing).
func (c *Client) Generate(ctx context.Context, r Request) (Response, error) {
	if r.Model == "" {
		return Response{}, errors.New("generate: no model")
	}
	switch c.Server().API {
	case APIOllama:
		return c.ollamaGenerate(ctx, r)
	case APIOpenAI:
		return c.openaiGenerate(ctx, r)
	}
	return Response{}, errors.New("generate: API not detected yet (call Detect first)")
}

// accumulator gathers a streamed answer within the limits.
type accumulator struct {
	lim        Limits
	numPredict int
	start      time.Time
	onFirst    func(time.Duration)
	stream     bool
	text       bytes.Buffer
	chunks     int
	resp       Response
}

func newAccumulator(lim Limits, r Request, start time.Time) *accumulator {
	return &accumulator{lim: lim, numPredict: r.NumPredict, start: start, onFirst: r.OnFirstToken, stream: r.stream(),
		resp: Response{QueueWait: -1}}
}

// add appends one chunk of text; it returns false when the stream must end
// (a cap was reached; resp.Cut says which).
func (a *accumulator) add(piece string) bool {
	if piece != "" {
		if a.resp.TTFT == 0 {
			a.resp.TTFT = time.Since(a.start)
			if a.onFirst != nil && a.stream {
				a.onFirst(a.resp.TTFT)
			}
		}
		a.chunks++
		room := a.lim.MaxAnswerBytes - a.text.Len()
		if len(piece) > room {
			a.text.WriteString(validPrefix(piece, room))
			a.resp.Cut = CutAnswerCap
			return false
		}
		a.text.WriteString(piece)
	}
	if a.numPredict > 0 && a.chunks > a.numPredict+a.lim.ExtraChunks {
		a.resp.Cut = CutRunaway
		return false
	}
	return true
}

func (a *accumulator) addLogprob(lp float64) {
	if len(a.resp.Logprobs) < a.lim.MaxLogprobs {
		a.resp.Logprobs = append(a.resp.Logprobs, lp)
	}
}

func (a *accumulator) finish() Response {
	a.resp.Text = a.text.String()
	a.resp.Latency = time.Since(a.start)
	if a.resp.Tokens == 0 {
		a.resp.Tokens = a.chunks
	}
	return a.resp
}

// validPrefix returns at most n bytes of s, not splitting a UTF-8 sequence.
func validPrefix(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if n >= len(s) {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// lineReader reads lines of at most max bytes, touching the idle timer on
// every read.
type lineReader struct {
	br  *bufio.Reader
	max int
	it  *idleTimer
}

func newLineReader(r io.Reader, max int, it *idleTimer) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 32<<10), max: max, it: it}
}

var errLineTooLong = errors.New("line too long")

// next returns the next line without its line ending. It returns io.EOF at
// the end of the body.
func (l *lineReader) next() ([]byte, error) {
	var line []byte
	for {
		frag, err := l.br.ReadSlice('\n')
		if len(frag) > 0 && l.it != nil {
			l.it.touch()
		}
		if len(line)+len(frag) > l.max {
			return nil, fmt.Errorf("%w: more than %d bytes", errLineTooLong, l.max)
		}
		switch {
		case err == nil:
			line = append(line, frag...)
			return bytes.TrimRight(line, "\r\n"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			line = append(line, frag...)
			continue
		case errors.Is(err, io.EOF):
			if len(line)+len(frag) == 0 {
				return nil, io.EOF
			}
			line = append(line, frag...)
			return bytes.TrimRight(line, "\r\n"), nil
		default:
			return nil, err
		}
	}
}
