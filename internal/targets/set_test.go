package targets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// fakeResolver answers from a table of loopback addresses and counts calls.
type fakeResolver struct {
	hosts map[string][]netip.Addr
	calls atomic.Int64
}

func (f *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	f.calls.Add(1)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if a, ok := f.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func newResolver() *fakeResolver {
	return &fakeResolver{hosts: map[string][]netip.Addr{
		"localhost":      addrs("127.0.0.1", "::1"),
		"db.internal":    addrs("127.0.0.10", "127.0.0.11", "::1"),
		"alias.internal": addrs("127.0.0.10"),
		"api.internal":   addrs("127.0.0.10"),
		"blocked.test":   addrs("127.0.0.3", "::1"),
		"mapped.test":    addrs("::ffff:127.0.0.30"),
	}}
}

// expand lists every address of a spec the slow way.
func expand(t *testing.T, r Resolver, sp Spec) []netip.Addr {
	t.Helper()
	switch sp.Kind {
	case KindHost:
		as, err := r.LookupNetIP(context.Background(), "ip", sp.Host)
		if err != nil {
			t.Fatalf("reference resolve %s: %v", sp.Host, err)
		}
		var out []netip.Addr
		for _, a := range as {
			out = append(out, a.Unmap())
		}
		return out
	default:
		iv := sp.interval()
		var out []netip.Addr
		for a := iv.lo.addr(); ; a = a.Next() {
			out = append(out, a)
			if len(out) > 1<<16 {
				t.Fatal("reference expansion too large for a test")
			}
			if a == iv.hi.addr() {
				return out
			}
		}
	}
}

type pair struct {
	a netip.Addr
	p uint16
}

// reference computes, naively, the multiset of targets a walk must produce:
// includes chunked into batches of batchSize specs, each batch deduplicated
// on its own, exclusions always winning.
func reference(t *testing.T, r Resolver, ports []uint16, include, exclude []string, batchSize int) map[Target]int {
	t.Helper()
	excludedAny := map[netip.Addr]bool{}
	excludedPair := map[pair]bool{}
	for _, raw := range exclude {
		sp, err := ParseSpec(raw)
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		for _, a := range expand(t, r, sp) {
			if sp.Port == 0 {
				excludedAny[a] = true
			} else {
				excludedPair[pair{a, sp.Port}] = true
			}
		}
	}
	out := map[Target]int{}
	visited := map[pair]bool{} // across batches: a pair is visited once
	for start := 0; start < len(include); start += batchSize {
		end := min(start+batchSize, len(include))
		pairs := map[pair]bool{}
		var order []pair
		pairHost, pairScheme := map[pair]string{}, map[pair]string{}
		addrHost := map[netip.Addr]string{}
		for _, raw := range include[start:end] {
			sp, err := ParseSpec(raw)
			if err != nil {
				t.Fatalf("reference: %v", err)
			}
			for _, a := range expand(t, r, sp) {
				ps := ports
				if sp.Port != 0 {
					ps = []uint16{sp.Port}
					k := pair{a, sp.Port}
					if sp.Kind == KindHost && pairHost[k] == "" {
						pairHost[k] = sp.Host
					}
					if pairScheme[k] == "" {
						pairScheme[k] = sp.Scheme
					}
				} else if sp.Kind == KindHost && addrHost[a] == "" {
					addrHost[a] = sp.Host
				}
				for _, p := range ps {
					k := pair{a, p}
					if !pairs[k] {
						pairs[k] = true
						order = append(order, k)
					}
				}
			}
		}
		for _, k := range order {
			if excludedAny[k.a] || excludedPair[k] || visited[k] {
				continue
			}
			visited[k] = true
			tg := Target{Addr: k.a, Port: k.p, Hostname: pairHost[k], Scheme: pairScheme[k]}
			if tg.Hostname == "" {
				tg.Hostname = addrHost[k.a]
			}
			tg.TLS = tg.Scheme == "https"
			out[tg]++
		}
	}
	return out
}

func walkAll(t *testing.T, s *Set) ([]Target, map[Target]int) {
	t.Helper()
	var seq []Target
	got := map[Target]int{}
	err := s.Walk(context.Background(), func(tg Target) error {
		seq = append(seq, tg)
		got[tg]++
		return nil
	})
	if err != nil {
		t.Fatalf("Walk: %v", err)
	}
	return seq, got
}

func diffTargets(want, got map[Target]int) string {
	var b strings.Builder
	for k, n := range want {
		if got[k] != n {
			fmt.Fprintf(&b, "  %v:%d host=%q scheme=%q: want %d visits, got %d\n", k.Addr, k.Port, k.Hostname, k.Scheme, n, got[k])
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "  %v:%d host=%q scheme=%q: unexpected, %d visits\n", k.Addr, k.Port, k.Hostname, k.Scheme, n)
		}
	}
	return b.String()
}

func TestSetMatchesReference(t *testing.T) {
	tests := []struct {
		name             string
		ports            []uint16
		include, exclude []string
	}{
		{
			name:    "addresses ranges and cidrs crossed with ports",
			ports:   []uint16{11434, 8000},
			include: []string{"127.0.0.1-3", "127.0.1.0/30", "127.0.2.9"},
		},
		{
			name:    "overlaps and duplicates are visited once",
			ports:   []uint16{11434},
			include: []string{"127.0.0.0/29", "127.0.0.4-10", "127.0.0.5", "127.0.0.5:11434", "127.0.0.5:9999", "127.0.0.6:9999", "127.0.0.5-6"},
		},
		{
			name:    "exclusions win over explicit targets",
			ports:   []uint16{11434, 8000},
			include: []string{"127.0.0.0/28", "127.0.0.5:8000", "127.0.0.9:9000", "localhost"},
			exclude: []string{"127.0.0.5", "127.0.0.8/30", "127.0.0.1:11434", "[::1]:8000", "127.0.0.9:9000"},
		},
		{
			name:    "host name exclusions",
			ports:   []uint16{80},
			include: []string{"127.0.0.0/29", "::1"},
			exclude: []string{"blocked.test"},
		},
		{
			name:    "host names and URLs carry name and scheme",
			ports:   []uint16{11434, 9000},
			include: []string{"db.internal", "db.internal:9000", "https://api.internal:8443/", "alias.internal", "127.0.0.20", "http://127.0.0.21/", "mapped.test"},
		},
		{
			name:    "IPv6",
			ports:   []uint16{80, 443},
			include: []string{"::1", "fd00::/126", "fd00::10-fd00::12", "[fd00::20]:8000"},
			exclude: []string{"fd00::2", "fd00::11:443"},
		},
		{
			name:    "port-specific exclusion of a configured port",
			ports:   []uint16{1, 2, 3},
			include: []string{"127.0.0.0/30", "127.0.0.1:2", "127.0.0.9:3"},
			exclude: []string{"127.0.0.1:2", "127.0.0.2:3", "http://127.0.0.9:3/"},
		},
		{
			name:    "everything excluded",
			ports:   []uint16{80},
			include: []string{"127.0.0.0/24"},
			exclude: []string{"127.0.0.0/16"},
		},
		{
			name:    "mapped and plain IPv4 are the same address",
			ports:   []uint16{80},
			include: []string{"::ffff:127.0.0.1", "127.0.0.1", "127.0.0.2"},
			exclude: []string{"::ffff:127.0.0.2"},
		},
	}
	for _, tt := range tests {
		for _, bs := range []int{0, 1, 2, 3} {
			t.Run(fmt.Sprintf("%s/batch=%d", tt.name, bs), func(t *testing.T) {
				r := newResolver()
				s, err := NewSet(context.Background(), Options{Ports: tt.ports, Seed: 7, Resolver: r, BatchSize: bs}, tt.include, nil, tt.exclude, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				ref := bs
				if ref == 0 {
					ref = DefaultBatchSize
				}
				want := reference(t, r, tt.ports, tt.include, tt.exclude, ref)
				total := 0
				for _, n := range want {
					total += n
				}
				if s.Count() != uint64(total) {
					t.Errorf("Count() = %d, want %d", s.Count(), total)
				}
				seq, got := walkAll(t, s)
				if d := diffTargets(want, got); d != "" {
					t.Errorf("walk differs from reference:\n%s", d)
				}
				if uint64(len(seq)) != s.Count() {
					t.Errorf("walked %d targets, Count() = %d", len(seq), s.Count())
				}
				seq2, _ := walkAll(t, s)
				if !slices.Equal(seq, seq2) {
					t.Error("a second Walk gave a different order")
				}
			})
		}
	}
}

func TestSeedFixesOrder(t *testing.T) {
	order := func(seed uint64) ([]Target, uint64) {
		s, err := NewSet(context.Background(), Options{Ports: []uint16{1, 2}, Seed: seed}, []string{"127.0.0.0/24"}, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		seq, _ := walkAll(t, s)
		return seq, s.Seed()
	}
	a, sa := order(99)
	b, _ := order(99)
	c, _ := order(100)
	if sa != 99 {
		t.Errorf("Seed() = %d, want 99", sa)
	}
	if !slices.Equal(a, b) {
		t.Error("same seed, different order")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds, same order")
	}
	r1, s1 := order(0)
	if s1 == 0 {
		t.Error("seed 0 was not replaced by a random seed")
	}
	r2, _ := order(s1)
	if !slices.Equal(r1, r2) {
		t.Error("walking again with the reported random seed gave a different order")
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilesAndStdin(t *testing.T) {
	dir := t.TempDir()
	hosts := writeFile(t, dir, "hosts.txt", `# lab hosts
127.0.0.1, 127.0.0.2 127.0.0.3

127.0.1.0/30   # a small net
	db.internal:9000,https://api.internal:8443/
`)
	keep := writeFile(t, dir, "keep-out.txt", "# never\n127.0.0.2\n\n127.0.1.1:11434\n")
	equivalentInclude := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.1.0/30", "db.internal:9000", "https://api.internal:8443/", "127.0.0.99"}
	equivalentExclude := []string{"127.0.0.2", "127.0.1.1:11434", "127.0.0.3"}
	ports := []uint16{11434}

	r := newResolver()
	spoolDir := t.TempDir()
	s, err := NewSet(context.Background(),
		Options{Ports: ports, Seed: 3, Resolver: r, Stdin: strings.NewReader("127.0.0.99\n"), TempDir: spoolDir},
		[]string{"-"}, []string{hosts}, []string{"127.0.0.3"}, []string{keep})
	if err != nil {
		t.Fatal(err)
	}
	spooled, _ := filepath.Glob(filepath.Join(spoolDir, "*"))
	if len(spooled) != 1 {
		t.Fatalf("spooled files: %v, want one", spooled)
	}
	want := reference(t, r, ports, equivalentInclude, equivalentExclude, DefaultBatchSize)
	_, got := walkAll(t, s)
	if d := diffTargets(want, got); d != "" {
		t.Errorf("walk differs from reference:\n%s", d)
	}
	if s.Count() != uint64(len(want)) {
		t.Errorf("Count() = %d, want %d", s.Count(), len(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(spoolDir, "*")); len(left) != 0 {
		t.Errorf("Close left the spool behind: %v", left)
	}
	if err := s.Walk(context.Background(), func(Target) error { return nil }); err == nil {
		t.Error("Walk after Close succeeded")
	}

	// Excludes from standard input.
	s, err = NewSet(context.Background(), Options{Ports: ports, Stdin: strings.NewReader("127.0.0.0/24\n")},
		[]string{"127.0.0.0/23"}, nil, nil, []string{"-"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Count() != 256 {
		t.Errorf("Count() with stdin exclusions = %d, want 256", s.Count())
	}
}

func TestMultiBatchFile(t *testing.T) {
	dir := t.TempDir()
	var lines, specs []string
	for i := 0; i < 40; i++ {
		l := fmt.Sprintf("127.0.%d.0/30", i)
		lines = append(lines, l)
		specs = append(specs, l)
	}
	lines = append(lines, "127.0.0.1", "db.internal:9000") // cross-batch duplicate, host name
	specs = append(specs, "127.0.0.1", "db.internal:9000")
	path := writeFile(t, dir, "many.txt", strings.Join(lines, "\n")+"\n")
	ports := []uint16{80, 81}
	r := newResolver()
	s, err := NewSet(context.Background(), Options{Ports: ports, Seed: 11, Resolver: r, BatchSize: 7}, nil, []string{path}, []string{"127.0.5.0/24"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.batches != 6 {
		t.Errorf("batches = %d, want 6", s.batches)
	}
	want := reference(t, r, ports, specs, []string{"127.0.5.0/24"}, 7)
	total := 0
	for _, n := range want {
		total += n
	}
	if s.Count() != uint64(total) {
		t.Errorf("Count() = %d, want %d", s.Count(), total)
	}
	seq, got := walkAll(t, s)
	if d := diffTargets(want, got); d != "" {
		t.Errorf("walk differs from reference:\n%s", d)
	}
	seq2, _ := walkAll(t, s)
	if !slices.Equal(seq, seq2) {
		t.Error("second walk of a multi-batch file gave a different order")
	}
	// Nothing batch-sized is kept between walks, and each batch holds
	// intervals for at most its own specs (each spec here is at most two
	// intervals once merged), however long the file.
	if s.only != nil {
		t.Error("a multi-batch set kept a batch in memory")
	}
	err = s.batchesOf(context.Background(), func(b *batch) error {
		n := 0
		for _, blk := range b.blocks {
			n += len(blk.ivs)
		}
		if n > 2*7 {
			t.Errorf("a batch of 7 specs holds %d intervals", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestNewSetErrors(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "hosts.txt", "127.0.0.1\n127.0.0.2\n\n# fine\n127.0.0.3 10.0.0.300\n127.0.0.4\n")
	unresolvable := writeFile(t, dir, "names.txt", "127.0.0.1\nnowhere.internal:80\n")
	ctx := context.Background()
	base := Options{Ports: []uint16{80}, Resolver: newResolver()}
	tests := []struct {
		name                 string
		opts                 Options
		inc, incF, exc, excF []string
		want                 string
	}{
		{name: "bad line in file", opts: base, incF: []string{bad},
			want: bad + `:5: "10.0.0.300": not an IP address, CIDR, range, host name or URL`},
		{name: "bad line in a later batch", opts: Options{Ports: []uint16{80}, BatchSize: 1}, incF: []string{bad},
			want: bad + `:5: "10.0.0.300": not an IP address, CIDR, range, host name or URL`},
		{name: "bad exclusion file", opts: base, inc: []string{"127.0.0.1"}, excF: []string{bad},
			want: bad + `:5: "10.0.0.300"`},
		{name: "bad command-line spec", opts: base, inc: []string{"127.0.0.1,10.0.0.300"},
			want: `"10.0.0.300": not an IP address, CIDR, range, host name or URL`},
		{name: "bad stdin line", opts: Options{Ports: []uint16{80}, Stdin: strings.NewReader("127.0.0.1\n127.0.0.0/40\n"), TempDir: dir}, inc: []string{"-"},
			want: `<stdin>:2: "127.0.0.0/40": prefix length 40 is out of range for IPv4 (0-32)`},
		{name: "stdin twice", opts: Options{Ports: []uint16{80}, Stdin: strings.NewReader("")}, inc: []string{"-"}, excF: []string{"-"},
			want: `standard input ("-") can be read only once`},
		{name: "missing file", opts: base, incF: []string{filepath.Join(dir, "nope.txt")},
			want: "nope.txt: no such file"},
		{name: "unresolvable host", opts: base, incF: []string{unresolvable},
			want: unresolvable + `:2: "nowhere.internal:80": resolving host name: lookup nowhere.internal: no such host`},
		{name: "unresolvable exclusion", opts: base, inc: []string{"127.0.0.1"}, exc: []string{"nowhere.internal"},
			want: `"nowhere.internal": resolving host name`},
		{name: "no resolver", opts: Options{Ports: []uint16{80}}, inc: []string{"db.internal"},
			want: `"db.internal": cannot resolve host name: no resolver configured`},
		{name: "no ports", opts: Options{}, inc: []string{"127.0.0.1"}, want: "no ports to scan"},
		{name: "port zero", opts: Options{Ports: []uint16{0}}, inc: []string{"127.0.0.1"}, want: "port 0"},
		{name: "no targets", opts: base, want: "no targets given"},
		{name: "IPv6 /64", opts: base, inc: []string{"fd00::/64"},
			want: `"fd00::/64": target set of 18446744073709551616 addresses is larger than the maximum 2^48; narrow it`},
		{name: "too many pairs", opts: Options{Ports: []uint16{80, 443}}, inc: []string{"fd00::/80"},
			want: "target set of 562949953421312 (address, port) pairs is larger than the maximum 2^48; narrow it"},
		{name: "too many pairs across batches", opts: Options{Ports: []uint16{80}, BatchSize: 1}, inc: []string{"0.0.0.0/1", "fd00::/80"},
			want: "target set of 281477124194304 (address, port) pairs is larger than the maximum 2^48; narrow it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSet(ctx, tt.opts, tt.inc, tt.incF, tt.exc, tt.excF)
			if err == nil {
				s.Close()
				t.Fatalf("NewSet succeeded, want error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestSpecErrorFields(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "hosts.txt", "127.0.0.1\n127.0.0.1:0\n")
	_, err := NewSet(context.Background(), Options{Ports: []uint16{80}}, nil, []string{bad}, nil, nil)
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("error %v is not a *SpecError", err)
	}
	if se.File != bad || se.Line != 2 || se.Spec != "127.0.0.1:0" {
		t.Errorf("SpecError = %+v", se)
	}
	_, err = NewSet(context.Background(), Options{Ports: []uint16{80}}, []string{"fd00::/60"}, nil, nil, nil)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Count.String() != "295147905179352825856" {
		t.Errorf("error %v: want a TooLargeError counting 2^68", err)
	}
}

func TestLargestSets(t *testing.T) {
	ctx := context.Background()
	// Exactly 2^48 pairs is allowed.
	s, err := NewSet(ctx, Options{Ports: []uint16{80}, Seed: 1}, []string{"fd00::/80"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Count() != 1<<48 {
		t.Errorf("Count() = %d, want 2^48", s.Count())
	}
	prefix := netip.MustParsePrefix("fd00::/80")
	n := 0
	stop := errors.New("stop")
	err = s.Walk(ctx, func(tg Target) error {
		if !prefix.Contains(tg.Addr) || tg.Port != 80 {
			t.Errorf("target %v:%d outside the set", tg.Addr, tg.Port)
		}
		if n++; n == 100 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("Walk returned %v, want the callback's error", err)
	}
	// All of IPv4 on every port fits, counted exactly, minus exclusions.
	all, _ := ParsePorts("1-65535")
	s, err = NewSet(ctx, Options{Ports: all}, []string{"0.0.0.0/0"}, nil, []string{"127.0.0.0/8", "10.0.0.1:22"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1<<32-1<<24)*65535 - 1; s.Count() != want {
		t.Errorf("Count() = %d, want %d", s.Count(), want)
	}
}

func TestWalkStopsOnCancel(t *testing.T) {
	s, err := NewSet(context.Background(), Options{Ports: []uint16{80}, Seed: 5}, []string{"10.0.0.0/8"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	err = s.Walk(ctx, func(Target) error {
		calls++
		if calls == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Walk returned %v, want context.Canceled", err)
	}
	if calls != 10 {
		t.Errorf("callback ran %d times, want 10 (no call after cancel)", calls)
	}
	// A context cancelled before NewSet stops validation too.
	dead, cancelDead := context.WithCancel(context.Background())
	cancelDead()
	if _, err := NewSet(dead, Options{Ports: []uint16{80}}, []string{"127.0.0.1"}, nil, nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("NewSet with a cancelled context: %v", err)
	}
}

// TestMemoryFlat walks the first targets of a 2^30-address set. Expanding it
// would take gigabytes (even a bitmap takes 128 MiB); the walk must allocate
// a small constant amount.
func TestMemoryFlat(t *testing.T) {
	huge := []string{"0.0.0.0/4", "64.0.0.0/4", "128.0.0.0/4", "192.0.0.0/4"}
	ctx := context.Background()
	s, err := NewSet(ctx, Options{Ports: []uint16{11434}, Seed: 9}, huge, nil, []string{"10.0.0.0/8"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1<<30 - 1<<24); s.Count() != want {
		t.Fatalf("Count() = %d, want %d", s.Count(), want)
	}
	stop := errors.New("stop")
	walkN := func(n int) {
		i := 0
		err := s.Walk(ctx, func(Target) error {
			if i++; i == n {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Fatalf("Walk: %v", err)
		}
	}
	small := testing.AllocsPerRun(5, func() { walkN(10) })
	large := testing.AllocsPerRun(5, func() { walkN(100_000) })
	t.Logf("allocations per walk: %.0f for 10 targets, %.0f for 100000", small, large)
	if large > small+2 || large > 20 {
		t.Errorf("allocations grow with targets walked: %.0f for 10, %.0f for 100000", small, large)
	}

	// Building the set of 2^30 addresses costs no more than a few KiB either.
	var before, after runtimeMem
	before.read()
	s2, err := NewSet(ctx, Options{Ports: []uint16{11434, 8000}, Seed: 9}, huge, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	after.read()
	if grew := after.total - before.total; grew > 1<<20 {
		t.Errorf("NewSet of 2^31 pairs allocated %d bytes", grew)
	}
	_ = s2
}

// TestRepeatAcrossBatchesVisitedOnce: a host:port listed again in a later
// batch of a target file is visited once and counted once, whether the
// repeat names the port or comes from a portless spec; past MaxSeen the
// repeat is visited again and a warning says so.
func TestRepeatAcrossBatchesVisitedOnce(t *testing.T) {
	dir := t.TempDir()
	var lines []string
	for i := 0; i < 10; i++ {
		lines = append(lines, fmt.Sprintf("127.0.%d.7", 10+i*2))
	}
	// Batches of two: the first pair comes after five batches of
	// scattered addresses, its repeats three batches later.
	lines = append(lines, "127.0.0.5:11434", "127.0.0.9", "127.0.1.1", "127.0.3.1", "127.0.5.1", "127.0.7.1",
		"127.0.0.5:11434", "127.0.0.5", "127.0.0.9:8000", "127.0.0.9:9999")
	path := writeFile(t, dir, "repeat.txt", strings.Join(lines, "\n")+"\n")
	ports := []uint16{11434, 8000}

	count := func(maxSeen int) (map[Target]int, uint64, string) {
		var logs bytes.Buffer
		s, err := NewSet(context.Background(), Options{Ports: ports, Seed: 3, BatchSize: 2, MaxSeen: maxSeen,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))}, nil, []string{path}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		seq, got := walkAll(t, s)
		if uint64(len(seq)) != s.Count() {
			t.Errorf("MaxSeen %d: walked %d, Count() %d", maxSeen, len(seq), s.Count())
		}
		return got, s.Count(), logs.String()
	}
	tg := func(a string, p uint16) Target { return Target{Addr: netip.MustParseAddr(a), Port: p} }

	got, n, logs := count(0)
	for _, k := range []Target{tg("127.0.0.5", 11434), tg("127.0.0.5", 8000), tg("127.0.0.9", 11434), tg("127.0.0.9", 8000), tg("127.0.0.9", 9999)} {
		if got[k] != 1 {
			t.Errorf("%v:%d visited %d times, want once", k.Addr, k.Port, got[k])
		}
	}
	if want := uint64(2 + 2 + 1 + 14*2); n != want {
		t.Errorf("Count() = %d, want %d", n, want)
	}
	if strings.Contains(logs, "visited twice") {
		t.Errorf("warned with room to spare: %s", logs)
	}

	got, _, logs = count(3)
	if got[tg("127.0.0.5", 11434)] != 2 {
		t.Errorf("past MaxSeen: 127.0.0.5:11434 visited %d times; the test expects the cap to bite", got[tg("127.0.0.5", 11434)])
	}
	if !strings.Contains(logs, "visited twice") {
		t.Errorf("no warning when the cap was reached: %q", logs)
	}
}
