package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The realistic load: n streams at once, each a generation of slowTokens
// tokens, one every slowEvery, timed at the client: time to first token
// (request sent to first token line read) and the delay between
// consecutive token lines.

var slowBody = []byte(`{"model":"` + slowModel + `","prompt":"Write a long story about the sea.","stream":true}`)

// streamResult is one realistic-load run.
type streamResult struct {
	streams, failed int
	tokens          int64
	ttft, gaps      []time.Duration // sorted
	elapsed         time.Duration
	cpu             time.Duration // the proxy's CPU time during the run (0: not measured)
	hwm             int64         // the proxy's peak RSS (KiB) after the run
	mem             string        // the guard's Go memory figures mid-run
	firstErr        string
}

func pctOf(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[max(0, min(i, len(ds)-1))]
}

// streamLoad opens n streams to t within ramp, reads them to the end, and
// times them.
func streamLoad(ctx context.Context, t target, n int, ramp time.Duration) streamResult {
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, MaxConnsPerHost: 0, DisableCompression: true,
		IdleConnTimeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	var (
		mu  sync.Mutex
		res streamResult
		wg  sync.WaitGroup
	)
	res.streams = n
	res.gaps = make([]time.Duration, 0, n*slowTokens)
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the starts over the ramp, as clients arrive.
			time.Sleep(time.Duration(int64(ramp) * int64(i) / int64(n)))
			ttft, gaps, tokens, err := oneStream(ctx, c, t)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
				return
			}
			res.ttft = append(res.ttft, ttft)
			res.gaps = append(res.gaps, gaps...)
			res.tokens += tokens
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.ttft)
	slices.Sort(res.gaps)
	return res
}

func oneStream(ctx context.Context, c *http.Client, t target) (ttft time.Duration, gaps []time.Duration, tokens int64, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/api/generate", bytes.NewReader(slowBody))
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	sent := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, nil, 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 4096)
	gaps = make([]time.Duration, 0, slowTokens)
	var last time.Time
	done := false
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			now := time.Now()
			if bytes.Contains(line, doneMark) {
				done = true
			} else {
				if last.IsZero() {
					ttft = now.Sub(sent)
				} else {
					gaps = append(gaps, now.Sub(last))
				}
				last = now
				tokens++
			}
		}
		if err != nil {
			break
		}
	}
	if !done || tokens != slowTokens {
		return 0, nil, 0, fmt.Errorf("stream ended after %d tokens (done %v)", tokens, done)
	}
	return ttft, gaps, tokens, nil
}

// cpuTime is the CPU time (user + system) the process and its children
// (nginx's workers) have used, from /proc.
func cpuTime(pid int) time.Duration {
	total := procCPU(pid)
	for _, c := range children(pid) {
		total += procCPU(c)
	}
	return total
}

// procCPU reads utime+stime of /proc/PID/stat (clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
