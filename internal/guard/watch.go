package guard

import (
	"context"
	"sync"

	"github.com/llmfence/llmfence/internal/gibberish"
	"github.com/llmfence/llmfence/internal/guard/abuse"
	"github.com/llmfence/llmfence/internal/guard/meter"
	"github.com/llmfence/llmfence/internal/redact"
)

// The output watch (abuse.output_watch, off by default): the text of each
// streamed answer is scored as it passes (package gibberish, a table
// lookup or two per byte and no allocation per token, inline in the
// meter), and an answer that turns to gibberish raises the
// output_gibberish signal with the end of the prompt before it, redacted:
// a backdoor trigger seen in production.

// outputWatch follows one streamed answer.
type outputWatch struct {
	s      *gibberish.Stream
	fired  bool
	status gibberish.StreamStatus
}

// feed takes the next text of the answer (meter.WithText).
func (w *outputWatch) feed(text []byte) {
	if w.fired {
		return
	}
	w.s.Write(text)
	if st := w.s.Status(); st.Alarm {
		w.fired, w.status = true, st
	}
}

// watcher hands out output watches and reports what they saw.
type watcher struct {
	det  *abuse.Detector
	red  *redact.Redactor // nil: the prompt is not recorded
	pool sync.Pool
}

func newWatcher(det *abuse.Detector, red *redact.Redactor) *watcher {
	w := &watcher{det: det, red: red}
	w.pool.New = func() any { return &outputWatch{s: gibberish.NewStream()} }
	return w
}

// start returns a watch for a streamed answer (nil when the answer is not
// a stream).
func (w *watcher) start(info meter.RequestInfo) *outputWatch {
	if w == nil || !info.Stream || info.Endpoint == meter.EndpointEmbed {
		return nil
	}
	ow := w.pool.Get().(*outputWatch)
	ow.s.Reset()
	ow.fired, ow.status = false, gibberish.StreamStatus{}
	return ow
}

// finish reports a watch that fired, off the request path (the prompt is
// decoded and redacted there), and recycles it.
func (w *watcher) finish(ow *outputWatch, ev abuse.OutputEvent, body []byte) {
	if ow == nil {
		return
	}
	if !ow.fired {
		ow.s.Close() // the last, unfinished unit
		if st := ow.s.Status(); st.Alarm {
			ow.fired, ow.status = true, st
		}
	}
	if !ow.fired {
		w.pool.Put(ow)
		return
	}
	ev.Score, ev.Offset = ow.status.Peak, ow.status.Offset
	w.pool.Put(ow)
	go func() {
		if w.red != nil {
			ev.Prompt, _ = w.red.Redact(meter.RequestText(body))
		}
		w.det.Output(context.Background(), ev)
	}()
}
