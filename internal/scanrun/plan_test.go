package scanrun

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/cli"
)

// failResolver fails the test when anything is resolved.
type failResolver struct{ t *testing.T }

func (r failResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.t.Errorf("resolved %q", host)
	return nil, errors.New("no")
}

// The dry run works everything out without a connection: the session's
// dialer and resolver fail the test if called, and a loopback listener on
// the planned port sees no connection.
func TestPlanSendsNothing(t *testing.T) {
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
	o := fastOptions()
	o.Rate = 1000
	o.Ports = "80,443"
	sess := &Session{Options: o, Logger: quiet(), Resolver: failResolver{t},
		Dial: func(context.Context, string, string) (net.Conn, error) {
			t.Error("the dry run dialled")
			return nil, errors.New("no")
		}}
	p, err := sess.Plan(context.Background(), Targets{Include: []string{ln.Addr().String(), "127.0.0.0/30", "224.0.0.1", "192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Pairs != 4*2+1 {
		t.Errorf("pairs %d, want 9", p.Pairs)
	}
	var got []string
	for _, r := range p.Ranges {
		got = append(got, r.String())
	}
	if want := []string{"127.0.0.0/30", "127.0.0.1"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("ranges %v, want %v", got, want)
	}
	if len(p.Blocked) != 2 || p.Blocked[0].Range.Prefix != "192.0.2.0/24" || p.Blocked[1].Range.Prefix != "224.0.0.0/4" {
		t.Errorf("blocked %+v", p.Blocked)
	}
	if p.Fastest != 0 && p.Fastest > time.Second || p.Slowest < p.Fastest {
		t.Errorf("estimate %v..%v", p.Fastest, p.Slowest)
	}
	select {
	case <-accepted:
		t.Error("the dry run connected to the listener")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestEstimate(t *testing.T) {
	o := DefaultOptions()
	o.Rate, o.Concurrency, o.Timeout, o.Retries = 2000, 4096, 3*time.Second, 1
	for _, tc := range []struct {
		pairs          uint64
		rate           float64
		fastest, worst time.Duration
	}{
		{65536, 2000, 33 * time.Second, 96 * time.Second},        // 16 waves × 3 s × 2
		{1 << 24, 2000, 8389 * time.Second, 24576 * time.Second}, // 4096 waves × 3 s × 2
		{4096, 0, 0, 6 * time.Second},
		{0, 2000, 0, 0},
	} {
		o.Rate = tc.rate
		f, w := Estimate(tc.pairs, o)
		if f != tc.fastest || w != tc.worst {
			t.Errorf("Estimate(%d at %v/s) = %v, %v; want %v, %v", tc.pairs, tc.rate, f, w, tc.fastest, tc.worst)
		}
	}
}

// Input that leaves nothing to scan is a usage error that says why.
func TestPrepareRefusesEmpty(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, []byte("# nothing here\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		t    Targets
		opts func(*Options)
		msg  string
	}{
		{"empty file", Targets{InputLists: []string{empty}}, nil, "list no address"},
		{"empty argument", Targets{Include: []string{""}}, nil, "list no address"},
		{"blank argument", Targets{Include: []string{" , "}}, nil, "list no address"},
		{"excluded", Targets{Include: []string{"127.0.0.0/30"}, Exclude: []string{"127.0.0.0/24"}}, nil, "exclusions remove every target"},
		{"reserved", Targets{Include: []string{"224.0.0.0/24", "255.255.255.255"}}, nil, "--allow-reserved"},
		{"no dns", Targets{Include: []string{"127.0.0.1", "db.internal"}}, func(o *Options) { o.NoDNS = true }, "--no-dns"},
		{"no dns in exclusions", Targets{Include: []string{"127.0.0.1"}, Exclude: []string{"db.internal"}}, func(o *Options) { o.NoDNS = true }, "--no-dns"},
		{"missing list", Targets{InputLists: []string{filepath.Join(dir, "none.txt")}}, nil, "-iL: "},
		{"missing exclusions", Targets{Include: []string{"127.0.0.1"}, ExcludeFiles: []string{filepath.Join(dir, "none.txt")}}, nil, "--exclude-file: "},
		{"budget 0", Targets{Include: []string{"127.0.0.1"}}, func(o *Options) { o.TargetBudget = 0 }, "--target-budget"},
	} {
		o := fastOptions()
		if tc.opts != nil {
			tc.opts(&o)
		}
		sess := &Session{Options: o, Logger: quiet(), Resolver: failResolver{t}}
		set, err := sess.Prepare(context.Background(), tc.t)
		if err == nil {
			set.Close()
			t.Errorf("%s: accepted (%d pairs)", tc.name, set.Count())
			continue
		}
		if !cli.IsUsage(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v (usage error: %v), want one about %q", tc.name, err, cli.IsUsage(err), tc.msg)
		}
	}
	// --allow-reserved lifts the guard.
	o := fastOptions()
	o.AllowReserved = true
	set, err := (&Session{Options: o, Logger: quiet()}).Prepare(context.Background(), Targets{Include: []string{"224.0.0.0/30"}})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if set.Count() != 4*uint64(len(strings.Split(DefaultPortSpec(), ","))) {
		t.Errorf("--allow-reserved: %d pairs", set.Count())
	}
}
