package audit

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseProcNetTCP(t *testing.T) {
	v4 := strings.Join([]string{
		tcpHeader,
		"   0: " + procAddr4(0, 0, 0, 0) + ":2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0",
		"   1: " + procAddr4(127, 0, 0, 1) + ":1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000   998        0 1002 1 0 100 0 0 10 0",
		// established, not listening
		"   2: " + procAddr4(127, 0, 0, 1) + ":2CAA " + procAddr4(127, 0, 0, 1) + ":D431 01 00000000:00000000 00:00000000 00000000     0        0 1003 1",
		"   3: " + procAddr4(192, 0, 2, 7) + ":0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1004 1",
		"garbage line",
		"   4: ZZZZZZZZ:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1005 1",
		"   5: " + procAddr4(10, 1, 2, 3) + ":50 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1006 1", // short port
	}, "\n")
	got, err := parseProcNetTCP(context.Background(), strings.NewReader(v4), false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Listener{
		{netip.MustParseAddrPort("0.0.0.0:11434"), 1001, 0},
		{netip.MustParseAddrPort("127.0.0.1:8080"), 1002, 998},
		{netip.MustParseAddrPort("192.0.2.7:80"), 1004, 1000},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %+v, want %+v", i, got[i], want[i])
		}
	}

	v6 := tcpHeader +
		"   0: " + procAddr6([16]byte{}) + ":2CAA " + procAddr6([16]byte{}) + ":0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1\n" +
		"   1: " + procAddr6(netip.IPv6Loopback().As16()) + ":1F90 " + procAddr6([16]byte{}) + ":0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1\n" +
		"   2: " + procAddr6(netip.MustParseAddr("::ffff:127.0.0.1").As16()) + ":0BB8 " + procAddr6([16]byte{}) + ":0000 0A 00000000:00000000 00:00000000 00000000     0        0 2003 1\n" +
		"   3: " + procAddr6(netip.MustParseAddr("2001:db8::5").As16()) + ":0BB8 " + procAddr6([16]byte{}) + ":0000 0A 00000000:00000000 00:00000000 00000000     0        0 2004 1\n"
	got, err = parseProcNetTCP(context.Background(), strings.NewReader(v6), true)
	if err != nil {
		t.Fatal(err)
	}
	wantScopes := []string{scopeAll, scopeLoopback, scopeLoopback, scopeNetwork}
	wantAddr := []string{"[::]:11434", "[::1]:8080", "[::ffff:127.0.0.1]:3000", "[2001:db8::5]:3000"}
	if len(got) != 4 {
		t.Fatalf("v6: %v", got)
	}
	for i, l := range got {
		if l.Addr.String() != wantAddr[i] || addrScope(l.Addr.Addr()) != wantScopes[i] {
			t.Errorf("v6 %d: %s scope %s, want %s %s", i, l.Addr, addrScope(l.Addr.Addr()), wantAddr[i], wantScopes[i])
		}
	}
}

func TestParseProcNetTCPBounds(t *testing.T) {
	long := tcpHeader + strings.Repeat("x", maxNetLine+10) + "\n"
	if _, err := parseProcNetTCP(context.Background(), strings.NewReader(long), false); err == nil {
		t.Errorf("an over-long line should end the read with an error")
	}
	var b strings.Builder
	b.WriteString(tcpHeader)
	line := "   0: " + procAddr4(127, 0, 0, 1) + ":1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1\n"
	for range maxListeners + 5 {
		b.WriteString(line)
	}
	got, err := parseProcNetTCP(context.Background(), strings.NewReader(b.String()), false)
	if !errors.Is(err, errTooManyListeners) || len(got) != maxListeners {
		t.Errorf("got %d listeners, err %v; want %d and errTooManyListeners", len(got), err, maxListeners)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := parseProcNetTCP(ctx, strings.NewReader(b.String()), false); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled read: %v", err)
	}
}

func FuzzParseProcNetTCP(f *testing.F) {
	f.Add([]byte(tcpHeader+"   0: 00000000:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1\n"), false)
	f.Add([]byte(tcpHeader+"   0: 00000000000000000000000000000000:2CAA 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 9 1\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, v6 bool) {
		got, _ := parseProcNetTCP(context.Background(), strings.NewReader(string(data)), v6)
		if lines := strings.Count(string(data), "\n") + 1; len(got) > lines {
			t.Fatalf("%d listeners from %d lines", len(got), lines)
		}
		for _, l := range got {
			if !l.Addr.IsValid() || l.Addr.Addr().Is4() == v6 {
				t.Fatalf("listener %v from a v6=%v table", l.Addr, v6)
			}
		}
	})
}
