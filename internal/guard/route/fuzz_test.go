package route

import (
	"bufio"
	"bytes"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"
)

var fuzzMethods = []string{"GET", "HEAD", "POST", "DELETE", "PUT", "OPTIONS", "post"}

// upstreamViews returns the paths an upstream might route raw to, written
// independently of Normalize:
//   - Go's ServeMux + gin (Ollama): URL.Path is fully percent-decoded (so %2f
//     becomes "/"), ServeMux redirects to path.Clean, gin's
//     RedirectTrailingSlash drops a trailing slash and RedirectFixedPath
//     ignores case;
//   - a paranoid reading: decode repeatedly, treat "\" as "/", clean, fold case.
//
// Every view is lower-cased, because routes are compared without case.
func upstreamViews(raw string) []string {
	p := raw
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	var views []string
	clean := func(s string) string {
		s = path.Clean("/" + s)
		return strings.ToLower(s)
	}
	if dec, err := url.PathUnescape(p); err == nil {
		views = append(views, clean(dec))
	}
	para := p
	for range 4 {
		dec, err := url.PathUnescape(para)
		if err != nil || dec == para {
			break
		}
		para = dec
	}
	para = strings.ReplaceAll(para, "\\", "/")
	views = append(views, clean(para))
	return views
}

// patternMatchFold is an independent segment matcher: ":x" one segment,
// "*x" one or more trailing segments, literals compared without case.
func patternMatchFold(pattern, p string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(p, "/"), "/")
	if pattern == "/" {
		return p == "/"
	}
	for i, s := range ps {
		if strings.HasPrefix(s, "*") {
			return len(xs) > i && xs[i] != ""
		}
		if i >= len(xs) || xs[i] == "" {
			return false
		}
		if strings.HasPrefix(s, ":") {
			continue
		}
		if !strings.EqualFold(s, xs[i]) {
			return false
		}
	}
	return len(xs) == len(ps)
}

// methodMayReach reports whether a request with method could reach a route
// accepting methods, reading methods without case and HEAD as GET to be
// safe whatever the upstream does.
func methodMayReach(methods []string, method string) bool {
	for _, m := range methods {
		if strings.EqualFold(m, method) || (strings.EqualFold(method, "HEAD") && m == "GET") {
			return true
		}
	}
	return false
}

func checkDecision(t *testing.T, tb *Table, method, raw string) {
	d := tb.Decide(method, raw)
	norm, nerr := Normalize(raw)

	// A malformed path is exactly a 400.
	if (nerr != nil) != (d.Status == 400) {
		t.Fatalf("%s %s %q: Normalize err %v but decision %+v", tb.Kind, method, raw, nerr, d)
	}
	if nerr == nil && d.Path != norm {
		t.Fatalf("%s %s %q: decision path %q, Normalize %q", tb.Kind, method, raw, d.Path, norm)
	}
	if d.Path != "" {
		bad := d.Path[0] != '/' || strings.Contains(d.Path, "//") ||
			strings.Contains(d.Path+"/", "/./") || strings.Contains(d.Path+"/", "/../") ||
			(len(d.Path) > 1 && strings.HasSuffix(d.Path, "/")) ||
			strings.ContainsAny(d.Path, "%\\?# ")
		for i := 0; i < len(d.Path); i++ {
			if d.Path[i] < 0x20 || d.Path[i] >= 0x7f {
				bad = true
			}
		}
		if bad {
			t.Fatalf("%s %s %q: forwarded path %q is not clean", tb.Kind, method, raw, d.Path)
		}
	}

	if d.Class != Denied {
		// The forwarded path maps to the same route and class in the table.
		r, ok := tb.Lookup(method, d.Path)
		if !ok || r.ID != d.Route || r.Class != d.Class {
			t.Fatalf("%s %s %q: decided %s/%s on %q but table says %v %v", tb.Kind, method, raw, d.Class, d.Route, d.Path, r, ok)
		}
		// Deciding again on the forwarded path changes nothing.
		if d2 := tb.Decide(method, d.Path); d2 != d {
			t.Fatalf("%s %s %q: not a fixpoint: %+v then %+v", tb.Kind, method, raw, d, d2)
		}
		if d.Status != 0 || d.Preflight {
			t.Fatalf("%s %s %q: allowed decision with status %d preflight %v", tb.Kind, method, raw, d.Status, d.Preflight)
		}
	}

	// Nothing the upstream could read as an admin route is open to
	// ordinary keys.
	if d.Class == Listing || d.Class == Inference {
		for _, v := range upstreamViews(raw) {
			for _, r := range tb.Routes {
				if r.Class == Admin && methodMayReach(r.Methods, method) && patternMatchFold(r.Pattern, v) {
					t.Fatalf("%s %s %q: decided %s (%s) but upstream may read %q as admin route %s",
						tb.Kind, method, raw, d.Class, d.Route, v, r.ID)
				}
			}
		}
	}
}

func fuzzSeeds(f *testing.F) {
	in, err := os.ReadFile("testdata/tricky_paths.txt")
	if err != nil {
		f.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(in))
	for sc.Scan() {
		fs := strings.SplitN(sc.Text(), " ", 3)
		if len(fs) == 3 && !strings.HasPrefix(fs[0], "#") {
			f.Add(uint8(0), fs[2])
		}
	}
	for _, s := range []string{
		"/api/chat%2f..%2fpull", "/v1/models/..%2fapi%2fpull", "/v1/models/%2e%2e%2fpull",
		"/api/chat/%2e%2e/pull", "/api/tags/..;/pull", "/api/tags%00/../pull", "/api/%5c..%5cpull",
		"/v1/chat/completions/../../slots/0", "/v1/models/../../pause", "/api/blobs/..",
	} {
		f.Add(uint8(2), s)
	}
}

// FuzzDecide checks, for every kind: a non-denied decision forwards a clean
// path that the table maps to the same route and class, and no spelling that
// an upstream could read as an admin route is ever classed listing or
// inference.
func FuzzDecide(f *testing.F) {
	fuzzSeeds(f)
	var tables []*Table
	for _, k := range Kinds() {
		tables = append(tables, mustTable(f, k))
	}
	f.Fuzz(func(t *testing.T, m uint8, raw string) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		for _, tb := range tables {
			checkDecision(t, tb, method, raw)
		}
	})
}

// TestUpstreamViewsCatchAdminSpellings makes sure the fuzz oracle itself
// sees through the spellings it is meant to catch.
func TestUpstreamViewsCatchAdminSpellings(t *testing.T) {
	for _, raw := range []string{"/api%2fpull", "/API/PULL", "/api/%2e%2e/api/pull", "/api/chat%2f..%2fpull", "/api\\pull", "/api/%252e%252e/api/pull", "//api/pull/"} {
		found := false
		for _, v := range upstreamViews(raw) {
			if patternMatchFold("/api/pull", v) {
				found = true
			}
		}
		if !found {
			t.Errorf("upstreamViews(%q) = %q: misses /api/pull", raw, upstreamViews(raw))
		}
	}
}
