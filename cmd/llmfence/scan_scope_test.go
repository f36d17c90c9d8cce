package main

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/scanrun"
)

// scan --list prints the plan and sends nothing: a loopback listener on the
// listed port sees no connection, and no store is created.
func TestScanListSendsNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	db := filepath.Join(t.TempDir(), "s.db")
	out, stderr, code := runCLI(t, "", "scan", "--list", "--db", db, "--rate", "100", ln.Addr().String(), "127.0.0.0/30", "192.0.2.0/24")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"address:port pairs", "nothing sent", "--rate 100/s", ln.Addr().(*net.TCPAddr).IP.String(), "127.0.0.0/30",
		"256 addresses in 192.0.2.0/24", "--allow-reserved"} {
		if !strings.Contains(out, want) {
			t.Errorf("--list output lacks %q:\n%s", want, out)
		}
	}
	select {
	case <-accepted:
		t.Error("scan --list connected to the target")
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("scan --list created the store")
	}
}

// A scan above the threshold asks; only yes goes on. (The caller checks
// that standard input is a terminal; here the answer comes from a
// reader.)
func TestConfirmScan(t *testing.T) {
	o := scanrun.DefaultOptions()
	en := testPrinter(t, locale.English)
	for _, tc := range []struct {
		pairs  uint64
		answer string
		ok     bool
		asked  bool
	}{
		{confirmAbove, "", true, false},
		{confirmAbove + 1, "y\n", true, true},
		{confirmAbove + 1, "YES\n", true, true},
		{confirmAbove + 1, "n\n", false, true},
		{confirmAbove + 1, "\n", false, true},
		{confirmAbove + 1, "", false, true}, // end of input
	} {
		var errb bytes.Buffer
		e := &env{stdin: strings.NewReader(tc.answer), stdout: io.Discard, stderr: &errb, log: slog.New(slog.DiscardHandler), text: en}
		f, s := scanrun.Estimate(tc.pairs, o)
		err := confirmScan(e, scanrun.Plan{Pairs: tc.pairs, Fastest: f, Slowest: s}, o)
		if (err == nil) != tc.ok || strings.Contains(errb.String(), "[y/N]") != tc.asked {
			t.Errorf("%d pairs, answer %q: %v, asked %v", tc.pairs, tc.answer, err, strings.Contains(errb.String(), "[y/N]"))
		}
		if err != nil && (!cli.IsUsage(err) || !strings.Contains(err.Error(), "--yes")) {
			t.Errorf("refusal %v does not point at --yes", err)
		}
	}
}
