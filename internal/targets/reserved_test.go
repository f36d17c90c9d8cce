package targets

import (
	"context"
	"net/netip"
	"strings"
	"testing"
)

// The scope guard's table, one address at a time: pure data, nothing is
// dialled.
func TestReservedFor(t *testing.T) {
	table, err := ReservedRanges()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr    string
		blocked string // prefix of the range that holds it; "" = scannable
	}{
		{"127.0.0.1", ""},
		{"127.255.255.254", ""},
		{"::1", ""},
		{"10.0.0.1", ""},
		{"172.16.5.4", ""},
		{"192.168.1.1", ""},
		{"100.64.0.1", ""},      // shared address space: overlay networks (Tailscale)
		{"169.254.169.254", ""}, // link-local
		{"198.18.0.1", ""},      // benchmarking labs
		{"fd00::1", ""},
		{"fe80::1", ""},
		{"8.8.8.8", ""},
		{"0.0.0.0", "0.0.0.0/8"},
		{"0.255.255.255", "0.0.0.0/8"},
		{"1.0.0.0", ""},
		{"192.0.2.1", "192.0.2.0/24"},
		{"192.0.3.0", ""},
		{"198.51.100.200", "198.51.100.0/24"},
		{"203.0.113.7", "203.0.113.0/24"},
		{"223.255.255.255", ""},
		{"224.0.0.1", "224.0.0.0/4"},
		{"239.255.255.250", "224.0.0.0/4"},
		{"240.0.0.1", "240.0.0.0/4"},
		{"255.255.255.255", "240.0.0.0/4"},
		{"::ffff:224.0.0.1", "224.0.0.0/4"}, // IPv4-mapped is still multicast
		{"::", "::/128"},
		{"::2", ""},
		{"100::1", "100::/64"},
		{"2001:db8::1", "2001:db8::/32"},
		{"2001:db9::1", ""},
		{"3fff:0fff::1", "3fff::/20"},
		{"ff02::1", "ff00::/8"},
	} {
		r, ok := ReservedFor(netip.MustParseAddr(tc.addr), table)
		switch {
		case tc.blocked == "" && ok:
			t.Errorf("%s is blocked by %s (%s); it should stay scannable", tc.addr, r.Prefix, r.Name)
		case tc.blocked != "" && (!ok || r.Prefix != tc.blocked):
			t.Errorf("%s: blocked by %q, want %s", tc.addr, r.Prefix, tc.blocked)
		}
	}
}

func TestReservedTableChecks(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, err string
	}{
		{"loopback", "version: 1\nranges:\n  - {prefix: 127.0.0.0/8, name: x, source: y, why: z}\n", "loopback"},
		{"overlap", "version: 1\nranges:\n  - {prefix: 224.0.0.0/4, name: x, source: y, why: z}\n  - {prefix: 239.0.0.0/8, name: x, source: y, why: z}\n", "overlaps"},
		{"host bits", "version: 1\nranges:\n  - {prefix: 224.0.0.1/4, name: x, source: y, why: z}\n", "host bits"},
		{"no source", "version: 1\nranges:\n  - {prefix: 224.0.0.0/4, name: x, why: z}\n", "source"},
		{"unknown field", "version: 1\nranges:\n  - {prefix: 224.0.0.0/4, name: x, source: y, why: z, note: q}\n", "note"},
	} {
		_, err := decodeReserved([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.err)
		}
	}
}

// The guard acts as an exclusion on every port and says what it removed.
func TestSetBlocked(t *testing.T) {
	table, err := ReservedRanges()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		include []string
		exclude []string
		ports   []uint16
		count   uint64
		hits    map[string]int64 // prefix -> addresses removed
	}{
		{"loopback untouched", []string{"127.0.0.0/24"}, nil, []uint16{80}, 256, nil},
		{"whole IPv4", []string{"0.0.0.0/0"}, nil, []uint16{80},
			1<<32 - 1<<24 - 3*256 - 2<<28,
			map[string]int64{"0.0.0.0/8": 1 << 24, "192.0.2.0/24": 256, "198.51.100.0/24": 256, "203.0.113.0/24": 256, "224.0.0.0/4": 1 << 28, "240.0.0.0/4": 1 << 28}},
		{"two ports", []string{"192.0.2.0/23"}, nil, []uint16{80, 443}, 2 * 256, map[string]int64{"192.0.2.0/24": 256}},
		{"port given", []string{"224.0.0.1:11434", "10.0.0.1:11434"}, nil, []uint16{80}, 1, map[string]int64{"224.0.0.0/4": 1}},
		{"all blocked", []string{"255.255.255.255"}, nil, []uint16{80}, 0, map[string]int64{"240.0.0.0/4": 1}},
		{"excluded first", []string{"192.0.2.0/24"}, []string{"192.0.2.0/25"}, []uint16{80}, 0, map[string]int64{"192.0.2.0/24": 128}},
		{"ipv6 doc", []string{"2001:db8::/120", "fd00::/120"}, nil, []uint16{80}, 256, map[string]int64{"2001:db8::/32": 256}},
	} {
		set, err := NewSet(ctx, Options{Ports: tc.ports, Seed: 1, Blocked: table}, tc.include, nil, tc.exclude, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if set.Count() != tc.count {
			t.Errorf("%s: count %d, want %d", tc.name, set.Count(), tc.count)
		}
		got := map[string]int64{}
		for _, h := range set.Blocked() {
			got[h.Range.Prefix] = h.Addresses.Int64()
		}
		if len(got) != len(tc.hits) {
			t.Errorf("%s: blocked %v, want %v", tc.name, got, tc.hits)
		}
		for p, n := range tc.hits {
			if got[p] != n {
				t.Errorf("%s: %s removed %d addresses, want %d", tc.name, p, got[p], n)
			}
		}
		if set.Count() > 1<<16 {
			set.Close()
			continue
		}
		err = set.Walk(ctx, func(tg Target) error {
			if r, ok := ReservedFor(tg.Addr, table); ok {
				t.Errorf("%s: walk yields %s, in %s", tc.name, tg.Addr, r.Prefix)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: walk: %v", tc.name, err)
		}
		set.Close()
	}
}
