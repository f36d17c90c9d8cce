package main

import (
	"context"
	"io"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/store"
)

// cutProxy forwards TCP to a backend and can cut every connection and
// refuse new ones for a while: a database that goes away and comes back.
type cutProxy struct {
	ln      net.Listener
	backend string
	mu      sync.Mutex
	conns   map[net.Conn]bool
	down    bool
}

func newCutProxy(t *testing.T, backend string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, backend: backend, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			down := p.down
			p.mu.Unlock()
			if down {
				c.Close()
				continue
			}
			go p.pipe(c)
		}
	}()
	return p
}

func (p *cutProxy) pipe(c net.Conn) {
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[b] = true, true
	p.mu.Unlock()
	go func() { io.Copy(b, c); b.Close() }()
	io.Copy(c, b)
	c.Close()
}

// cut closes every connection and refuses new ones until restore.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// TestDatabaseGoneAndBackMidRun: PostgreSQL goes away for a few seconds
// while two workers scan; the run resumes and completes, with exactly the
// services one scan finds, and nothing was marked done that was not done.
func TestDatabaseGoneAndBackMidRun(t *testing.T) {
	db := testPostgres(t)
	prefix := "127.115.0.0/24"
	startFleet(t, lab.Config{Seed: 33, Prefix: netip.MustParsePrefix(prefix), Live: 40})
	want := scanOnce(t, db, prefix)
	token := apiToken(t, db)
	u, _ := url.Parse(db)
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	viaProxy := u.String()
	listen := freeAddr(t)
	serve := startProc(t, "--db", viaProxy, "serve", "--listen", listen, "--workers", "0", "--poll", "200ms", "--rescue-after", "5s",
		"--maintain-every", "2s", "--min-shard-timeout", "5s", "--max-parallel", "2")
	base := "http://" + listen
	waitHTTP(t, serve, base)
	var procs []*proc
	for i := 0; i < 2; i++ {
		procs = append(procs, startProc(t, "--db", viaProxy, "worker", "--shards", "1", "--poll", "200ms", "--rescue-after", "5s"))
	}
	runID := startScanAPI(t, base, token, mapWith(shardedScan, "targets", []string{prefix}))
	st, err := store.OpenServer(context.Background(), db, store.Options{Logger: e2eQuiet()}) // direct, not through the proxy
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		p, _ := st.RunProgress(context.Background(), runID)
		if p.Done > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no progress before the outage")
		}
		time.Sleep(100 * time.Millisecond)
	}
	proxy.cut()
	time.Sleep(4 * time.Second)
	if r, _ := st.GetRun(context.Background(), runID); r.Status != store.StatusRunning {
		t.Fatalf("during the outage the run became %s", r.Status)
	}
	proxy.restore()
	r := waitFinished(t, st, runID, 180*time.Second, append(procs, serve)...)
	if r.Status != store.StatusFinished {
		t.Fatalf("run ended %s: %s", r.Status, r.Error)
	}
	svcs, _ := st.Services(context.Background(), runID)
	if got := svcKeys(svcs); !slices.Equal(got, want) {
		t.Errorf("after the outage the run found %d services, one scan %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	p, _ := st.RunProgress(context.Background(), runID)
	if p.ShardsDone != p.Shards || p.Done != p.Total {
		t.Errorf("finished run with shards %d/%d done and %d/%d pairs", p.ShardsDone, p.Shards, p.Done, p.Total)
	}
}
