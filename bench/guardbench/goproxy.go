package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

// The "go httputil" row: the standard library's ReverseProxy with a bearer
// check and nothing else, the floor under any Go gateway built on net/http
// (the guard included). It runs as this program re-run with
// -serve-goproxy, so it has a process and an RSS of its own.

// serveGoProxy proxies addr to upstream, admitting only "Bearer key".
func serveGoProxy(ctx context.Context, addr, upstream, key string) error {
	u, err := url.Parse(upstream)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("goproxy: listen on %s: %w", addr, err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = u.Host
			pr.Out.Header.Del("Authorization")
		},
		Transport:     &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true},
		FlushInterval: -1,
		// Its failures show up as errors in the load generator's counts.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	want := []byte("Bearer " + key)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		rp.ServeHTTP(w, r)
	})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Println(ln.Addr().String())
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("goproxy: %w", err)
	}
	return nil
}

// goProxyChild is the -serve-goproxy mode of this program.
func goProxyChild(addr, upstream, key string) {
	ctx, cancel := signalContext()
	defer cancel()
	if err := serveGoProxy(ctx, addr, upstream, key); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// startGoProxy runs the Go reference proxy in front of upstream.
func startGoProxy(upstream, key string) (*proc, string, error) {
	return startChild("go httputil", "-serve-goproxy", "127.0.0.1:0", "-goproxy-upstream", upstream, "-goproxy-key", key)
}
