package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is one HTTP endpoint under test.
type target struct {
	name string
	base string // http://127.0.0.1:PORT
	auth string // Authorization header value ("" = none)
}

// result is one load run's outcome.
type result struct {
	n, errs  int
	elapsed  time.Duration
	lat      []time.Duration // successful requests, sorted
	firstErr string
}

func (r result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

// pct is the q-quantile (0..1) of the sorted latencies.
func (r result) pct(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	i = max(0, min(i, len(r.lat)-1))
	return r.lat[i]
}

// genBody is the request every client sends: a short streamed generation.
var genBody = []byte(`{"model":"bench:1b","prompt":"Why is the sky blue? Answer briefly.","stream":true,"options":{"num_predict":64}}`)

var doneMark = []byte(`"done":true`)

// newClient is a keep-alive HTTP/1.1 client for conc workers.
func newClient(conc int) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conc * 2,
		MaxIdleConnsPerHost: conc * 2,
		MaxConnsPerHost:     conc,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// once sends one generate request and reads the whole stream; ok means a
// 200 whose body carried the final done:true object.
func once(ctx context.Context, c *http.Client, t target, buf *bytes.Buffer) (ok bool, msg string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/api/generate", bytes.NewReader(genBody))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	if t.auth != "" {
		req.Header.Set("Authorization", t.auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err.Error()
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err.Error()
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Sprintf("HTTP %d: %.200s", resp.StatusCode, buf.Bytes())
	}
	if !bytes.Contains(buf.Bytes(), doneMark) {
		return false, fmt.Sprintf("stream without a done:true line: %.200s", buf.Bytes())
	}
	return true, ""
}

// closedLoop runs conc workers sending back-to-back requests to t for d
// (after warm, whose requests are not counted).
func closedLoop(ctx context.Context, t target, conc int, warm, d time.Duration) result {
	c := newClient(conc)
	defer c.CloseIdleConnections()
	var (
		startNs atomic.Int64 // start of the measured window (0: warming up)
		mu      sync.Mutex
		res     result
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				buf      bytes.Buffer
				lat      = make([]time.Duration, 0, 4096)
				errs     int
				firstErr string
			)
			for ctx.Err() == nil {
				t0 := time.Now()
				ok, msg := once(ctx, c, t, &buf)
				end := time.Now()
				// Count what completed inside the window; requests cut off
				// by its end are not counted.
				if ctx.Err() != nil || startNs.Load() == 0 || end.UnixNano() < startNs.Load() {
					continue
				}
				if ok {
					lat = append(lat, end.Sub(t0))
				} else {
					errs++
					if firstErr == "" {
						firstErr = msg
					}
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			if res.firstErr == "" {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	time.Sleep(warm)
	start := time.Now()
	startNs.Store(start.UnixNano())
	time.Sleep(d)
	res.elapsed = time.Since(start)
	cancel()
	wg.Wait()
	res.n = len(res.lat)
	slices.Sort(res.lat)
	return res
}

// paced sends requests to t at rate per second for d, with up to conc in
// flight (an open loop: the schedule does not wait for slow responses
// beyond conc).
func paced(ctx context.Context, t target, rate, conc int, d time.Duration) result {
	c := newClient(conc)
	defer c.CloseIdleConnections()
	ticks := make(chan struct{}, conc)
	var (
		mu  sync.Mutex
		res result
		wg  sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for range ticks {
				t0 := time.Now()
				ok, msg := once(ctx, c, t, &buf)
				el := time.Since(t0)
				mu.Lock()
				if ok {
					res.lat = append(res.lat, el)
				} else {
					res.errs++
					if res.firstErr == "" {
						res.firstErr = msg
					}
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	total := int(d / interval)
	for i := range total {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		select {
		case ticks <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(ticks)
	wg.Wait()
	res.elapsed = time.Since(start)
	res.n = len(res.lat)
	slices.Sort(res.lat)
	return res
}

// probe sends one request (method/path) and returns the status code.
func probe(ctx context.Context, t target, auth string) (int, error) {
	c := newClient(1)
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/api/generate", bytes.NewReader(genBody))
	if err != nil {
		return 0, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
