package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// upstreamLines is how many NDJSON chunks a streamed generation sends
// before its final done:true object.
const upstreamLines = 20

// The realistic load's upstream: a request for slowModel streams
// slowTokens tokens, one every slowEvery, like a GPU generating.
const (
	slowModel  = "slow:1b"
	slowTokens = 200
	slowEvery  = 20 * time.Millisecond
)

// serveUpstream runs the fake Ollama on addr until ctx ends: POST
// /api/generate streams upstreamLines token objects as fast as it can (one
// flush each), then a done:true object with token counts; GET /api/version
// answers a version. It prints the bound address on stdout once listening,
// so the parent process learns the port.
func serveUpstream(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("upstream: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"version":"0.9.0"}`)
	})
	mux.HandleFunc("POST /api/generate", generate)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	fmt.Println(ln.Addr().String())
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("upstream: %w", err)
	}
	return nil
}

// generate is an Ollama-shaped streaming /api/generate.
func generate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model  string `json:"model"`
		Prompt string `json:"prompt"`
	}
	// Read the whole body before answering, as a real server does.
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	if req.Model == "" {
		req.Model = "bench:1b"
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	fl, _ := w.(http.Flusher)
	created := time.Now().UTC().Format(time.RFC3339Nano)
	model := strconv.Quote(req.Model)
	buf := make([]byte, 0, 256)
	lines, pace := upstreamLines, time.Duration(0)
	if req.Model == slowModel {
		lines, pace = slowTokens, slowEvery
	}
	next := time.Now()
	for i := range lines {
		if pace > 0 {
			next = next.Add(pace)
			time.Sleep(time.Until(next))
		}
		buf = buf[:0]
		buf = append(buf, `{"model":`...)
		buf = append(buf, model...)
		buf = append(buf, `,"created_at":"`...)
		buf = append(buf, created...)
		buf = append(buf, `","response":" tok`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `","done":false}`+"\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
	buf = buf[:0]
	buf = append(buf, `{"model":`...)
	buf = append(buf, model...)
	buf = append(buf, `,"created_at":"`...)
	buf = append(buf, created...)
	buf = append(buf, `","response":"","done":true,"done_reason":"stop","total_duration":1000000,"load_duration":1000,"prompt_eval_count":`...)
	buf = strconv.AppendInt(buf, int64(len(req.Prompt)/4+1), 10)
	buf = append(buf, `,"prompt_eval_duration":1000,"eval_count":`...)
	buf = strconv.AppendInt(buf, int64(lines), 10)
	buf = append(buf, `,"eval_duration":1000000}`+"\n"...)
	w.Write(buf)
}

// upstreamChild is the `-serve-upstream` mode of this program.
func upstreamChild(addr string) {
	ctx, cancel := signalContext()
	defer cancel()
	if err := serveUpstream(ctx, addr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
