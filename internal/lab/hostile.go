package lab

import (
	"bytes"
	"compress/gzip"
	"context"
	"net"
	"net/http"
	"strconv"
	"time"
)

// gzipBombRatio: one member inflates to bombMemberSize bytes; the body
// repeats the member bombMembers times (gzip readers continue across
// concatenated members), so ~2 MB on the wire inflate to 2 GiB.
const (
	bombMemberSize = 16 << 20
	bombMembers    = 128
)

// HostileBombInflated is how many bytes the gzip-bomb body inflates to.
const HostileBombInflated = int64(bombMemberSize) * bombMembers

func gzipBombMember() []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < bombMemberSize/len(zeros); i++ {
		_, _ = zw.Write(zeros)
	}
	_ = zw.Close()
	return buf.Bytes()
}

// serveHostile answers a request the way the persona's hostile kind does.
// Every loop ends when the client goes away or the server shuts down.
func (s *server) serveHostile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	switch s.p.Hostile {
	case HostileRedirect:
		// Another loopback address, on a port nothing listens on.
		http.Redirect(w, r, "http://127.0.0.2:1/", http.StatusFound)
	case HostileInvalidJSON:
		writeText(w, http.StatusOK, "application/json; charset=utf-8", `{"models":[{"name":"llama3.2:3b","size":20193`)
	case HostileHugeBody:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		entry := []byte(`{"name":"llama3.2:3b","model":"llama3.2:3b","size":2019393189,"digest":"a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72"},`)
		chunk := bytes.Repeat(entry, 512)
		if _, err := w.Write([]byte(`{"models":[`)); err != nil {
			return
		}
		for ctx.Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	case HostileGzipBomb:
		member := s.bomb()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", strconv.Itoa(len(member)*bombMembers))
		w.WriteHeader(http.StatusOK)
		for i := 0; i < bombMembers && ctx.Err() == nil; i++ {
			if _, err := w.Write(member); err != nil {
				return
			}
		}
	case HostileTarpit, HostileGarbage, HostileEndlessHeaders:
		hj, ok := w.(http.Hijacker)
		if !ok {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		serveRawHostile(ctx, conn, s.p.Hostile)
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// serveRawHostile misbehaves on a bare connection until ctx ends, the peer
// leaves or (garbage) the junk is sent.
func serveRawHostile(ctx context.Context, conn net.Conn, kind string) {
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	switch kind {
	case HostileGarbage:
		junk := []byte("\x00\xff\x13\x37SSH-9.9-not-http\r\n\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\xde\xad\xbe\xef\r\n")
		_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Write(bytes.Repeat(junk, 16))
	case HostileTarpit:
		line := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 0; ; i++ {
			_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(line[i%len(line) : i%len(line)+1]); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	case HostileEndlessHeaders:
		_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")); err != nil {
			return
		}
		hdr := bytes.Repeat([]byte("X-Lab-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), 64)
		for ctx.Err() == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := conn.Write(hdr); err != nil {
				return
			}
		}
	}
}
