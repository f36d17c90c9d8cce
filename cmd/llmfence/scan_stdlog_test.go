package main

import (
	"bufio"
	"bytes"
	"log"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// TestScanKeepsPeerBytesOffStderr scans a server that follows every
// complete response with bytes nobody asked for. net/http reports such
// bytes through the standard logger ("Unsolicited response received on
// idle HTTP channel starting with ..."); they must not reach the user's
// terminal.
func TestScanKeepsPeerBytesOffStderr(t *testing.T) {
	const marker = "HTTP/1.1 200 HOSTILE-MARKER"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// One request head (the probe sends no bodies on GET).
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" + marker + "\x1b[31m\r\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	cmd := llmfenceCommand(t, "--db", filepath.Join(t.TempDir(), "s.db"), "scan", "--progress", "never", "--format", "json",
		"--rate", "0", "--timeout", "1s", "--target-budget", "5s", "--keep-http", ln.Addr().String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("scan: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "Unsolicited") || strings.Contains(stderr.String(), "HOSTILE-MARKER") {
		t.Errorf("the peer's bytes reached stderr:\n%s", stderr.String())
	}
}

// TestStandardLoggerGoesToDebugLog: whatever the standard library prints
// through the log package lands in llmfence's debug log.
func TestStandardLoggerGoesToDebugLog(t *testing.T) {
	for _, tc := range []struct {
		level string
		shown bool
	}{{"debug", true}, {"warn", false}} {
		var out, errb bytes.Buffer
		if code := run(t.Context(), []string{"--log-level", tc.level, "version"}, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("version exited %d: %s", code, errb.String())
		}
		log.Printf("Unsolicited response received on idle HTTP channel starting with %q", "test-marker")
		got := errb.String()
		if tc.shown != strings.Contains(got, "test-marker") {
			t.Errorf("--log-level %s: log line shown = %v, want %v; stderr:\n%s", tc.level, !tc.shown, tc.shown, got)
		}
		if tc.shown && !strings.Contains(got, "level=DEBUG") {
			t.Errorf("--log-level %s: the line is not a debug record:\n%s", tc.level, got)
		}
	}
}
