package layering

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Packages' tests run at the same time (go test runs packages in
// parallel), and a lab fleet binds fixed loopback addresses. Two
// packages whose fleets share addresses fail at random with "address
// already in use". This test reads every test file's loopback prefixes
// narrower than /16 (the wide ones are address arithmetic, not fleets;
// 127.0.0.0/24 is where ephemeral servers live) and fails when two
// packages use overlapping ones.
var fleetPrefix = regexp.MustCompile(`"(127\.\d+\.\d+\.\d+/(1[6-9]|2\d|3[0-2]))"`)

func TestTestFleetsDoNotOverlapAcrossPackages(t *testing.T) {
	type use struct {
		prefix netip.Prefix
		dir    string
		file   string
	}
	var uses []use
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range fleetPrefix.FindAllStringSubmatch(string(b), -1) {
			p, err := netip.ParsePrefix(m[1])
			if err != nil || !p.IsValid() {
				continue // deliberately malformed input of a parser test
			}
			p = p.Masked()
			if p.Overlaps(netip.MustParsePrefix("127.0.0.0/16")) {
				continue
			}
			uses = append(uses, use{p, filepath.Dir(path), path})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(uses) < 10 {
		t.Fatalf("found only %d fleet prefixes in test files: is the walk reading the module?", len(uses))
	}
	for i, a := range uses {
		for _, b := range uses[i+1:] {
			if a.dir != b.dir && a.prefix.Overlaps(b.prefix) {
				t.Errorf("%s (%s) overlaps %s (%s): packages' tests run at once; give one of them another prefix", a.prefix, a.file, b.prefix, b.file)
			}
		}
	}
}
