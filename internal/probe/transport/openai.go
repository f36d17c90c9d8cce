package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func (c *Client) openaiModels(ctx context.Context) ([]Model, error) {
	var list struct {
		Data *[]struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := c.getJSON(ctx, http.MethodGet, "/v1/models", nil, maxSmallBody, &list); err != nil {
		return nil, err
	}
	if list.Data == nil {
		return nil, fmt.Errorf("GET /v1/models: no data list: %w", ErrProtocol)
	}
	out := make([]Model, 0, len(*list.Data))
	for _, m := range *list.Data {
		out = append(out, Model{Name: m.ID})
	}
	return out, nil
}

// openaiChunk is one SSE event of /v1/chat/completions or /v1/completions
// (or the whole answer of a server that ignored "stream").
type openaiChunk struct {
	Choices []struct {
		Delta *struct {
			Content string `json:"content"`
		} `json:"delta"`
		Message *struct {
			Content string `json:"content"`
		} `json:"message"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
		Logprobs     *struct {
			Content []struct {
				Logprob float64 `json:"logprob"`
			} `json:"content"`
			TokenLogprobs []float64 `json:"token_logprobs"`
		} `json:"logprobs"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (c *Client) openaiGenerate(ctx context.Context, r Request) (Response, error) {
	c.mu.Lock()
	withLogprobs := r.Logprobs && !c.noLogprobs
	c.mu.Unlock()
	resp, err := c.openaiOnce(ctx, r, withLogprobs)
	if err != nil && withLogprobs && errors.Is(err, errLogprobsRejected) {
		c.mu.Lock()
		c.noLogprobs = true
		c.server.Logprobs = false
		c.mu.Unlock()
		return c.openaiOnce(ctx, r, false)
	}
	return resp, err
}

var errLogprobsRejected = errors.New("logprobs rejected")

func (c *Client) openaiOnce(ctx context.Context, r Request, withLogprobs bool) (Response, error) {
	body := map[string]any{"model": r.Model, "stream": r.stream(), "seed": r.Seed, "temperature": r.Temperature}
	if r.stream() {
		body["stream_options"] = map[string]any{"include_usage": true}
	}
	if r.NumPredict > 0 {
		body["max_tokens"] = r.NumPredict
	}
	path := "/v1/chat/completions"
	if r.Raw != "" {
		path = "/v1/completions"
		body["prompt"] = r.Raw
		if withLogprobs {
			body["logprobs"] = 1
		}
	} else {
		msgs := make([]Message, 0, len(r.Messages)+1)
		if r.System != "" {
			msgs = append(msgs, Message{Role: "system", Content: r.System})
		}
		body["messages"] = append(msgs, r.Messages...)
		if withLogprobs {
			body["logprobs"] = true
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Response{}, err
	}
	start := time.Now()
	resp, it, err := c.do(ctx, http.MethodPost, path, b)
	if err != nil {
		return Response{QueueWait: -1}, err
	}
	defer it.stop()
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		eb, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if withLogprobs && resp.StatusCode == http.StatusBadRequest && bytes.Contains(bytes.ToLower(eb), []byte("logprob")) {
			return Response{QueueWait: -1}, errLogprobsRejected
		}
		return Response{QueueWait: -1}, statusError(http.MethodPost, path, resp, eb)
	}
	acc := newAccumulator(c.limits, r, start)
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/json") {
		// The server ignored "stream": one JSON answer.
		var ch openaiChunk
		dec := json.NewDecoder(&touchReader{r: io.LimitReader(resp.Body, int64(c.limits.MaxLineBytes)+1), it: it, left: int64(c.limits.MaxLineBytes)})
		if err := dec.Decode(&ch); err != nil {
			return acc.finish(), fmt.Errorf("POST %s: answer is not JSON (%v): %w", path, err, ErrProtocol)
		}
		done, err := c.openaiApply(acc, &ch, path)
		if err == nil && !done && acc.resp.Cut == "" {
			err = fmt.Errorf("POST %s: the answer has no choices: %w", path, ErrProtocol)
		}
		return acc.finish(), err
	}
	lr := newLineReader(resp.Body, c.limits.MaxLineBytes, it)
	finished := false
	for n := 1; ; n++ {
		line, err := lr.next()
		if errors.Is(err, io.EOF) {
			if finished {
				return acc.finish(), nil
			}
			return acc.finish(), fmt.Errorf("POST %s: stream ended before the answer was done: %w", path, ErrProtocol)
		}
		if err != nil {
			return acc.finish(), c.streamError(ctx, path, n, err)
		}
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			if len(bytes.TrimSpace(line)) == 0 || line[0] == ':' || bytes.HasPrefix(line, []byte("event:")) ||
				bytes.HasPrefix(line, []byte("id:")) || bytes.HasPrefix(line, []byte("retry:")) {
				continue
			}
			return acc.finish(), fmt.Errorf("POST %s: line %d is not a server-sent event (%s): %w", path, n, excerpt(line), ErrProtocol)
		}
		data = bytes.TrimSpace(data)
		if string(data) == "[DONE]" {
			drain(resp.Body)
			if !finished && acc.resp.Cut == "" {
				return acc.finish(), fmt.Errorf("POST %s: [DONE] before any finish_reason: %w", path, ErrProtocol)
			}
			return acc.finish(), nil
		}
		var ch openaiChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return acc.finish(), fmt.Errorf("POST %s: event on line %d is not JSON (%s): %w", path, n, excerpt(data), ErrProtocol)
		}
		done, err := c.openaiApply(acc, &ch, path)
		if err != nil || acc.resp.Cut != "" {
			return acc.finish(), err
		}
		finished = finished || done
	}
}

// openaiApply adds one chunk to the answer. It reports whether a
// finish_reason arrived.
func (c *Client) openaiApply(acc *accumulator, ch *openaiChunk, path string) (bool, error) {
	if len(ch.Error) > 0 && string(ch.Error) != "null" {
		var e struct {
			Message string `json:"message"`
		}
		msg := string(ch.Error)
		if json.Unmarshal(ch.Error, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		return false, fmt.Errorf("POST %s: the server stopped with %s: %w", path, excerpt([]byte(msg)), ErrServer)
	}
	if ch.Usage != nil {
		acc.resp.PromptTokens = ch.Usage.PromptTokens
		acc.resp.Tokens = ch.Usage.CompletionTokens
	}
	done := false
	for i, choice := range ch.Choices {
		if i > 0 {
			break // n = 1 is asked for
		}
		piece := choice.Text
		if choice.Delta != nil {
			piece = choice.Delta.Content
		} else if choice.Message != nil {
			piece = choice.Message.Content
		}
		if choice.Logprobs != nil {
			for _, lp := range choice.Logprobs.Content {
				acc.addLogprob(lp.Logprob)
			}
			for _, lp := range choice.Logprobs.TokenLogprobs {
				acc.addLogprob(lp)
			}
		}
		if !acc.add(piece) {
			return done, nil
		}
		if choice.FinishReason != nil && *choice.FinishReason != "" {
			acc.resp.DoneReason = *choice.FinishReason
			done = true
		}
	}
	return done, nil
}
