package vulndb

import "strings"

// Ordering names how a package's versions sort.
type Ordering string

const (
	// OrderSemver is Semantic Versioning 2.0 (a leading "v" and missing
	// minor or patch numbers are accepted, as servers report "v0.4" or
	// "0.5"). Go modules use it.
	OrderSemver Ordering = "semver"
	// OrderPyPI is PEP 440 (epochs, a/b/rc pre-releases, .post and .dev).
	OrderPyPI Ordering = "pypi"
	// OrderBuild is a build number, with or without a leading "b"
	// (llama.cpp: "b4500", "4500 (abc1234)").
	OrderBuild Ordering = "build"
)

// compare orders a and b; ok is false when either is not a version in
// this ordering, or is a placeholder made only of zeros ("0.0.0", a
// development build) that says nothing about the code.
func (o Ordering) compare(a, b string) (int, bool) {
	switch o {
	case OrderPyPI:
		x, okA := parsePEP440(a)
		y, okB := parsePEP440(b)
		if !okA || !okB {
			return 0, false
		}
		return x.compare(y), true
	case OrderBuild:
		x, okA := parseBuild(a)
		y, okB := parseBuild(b)
		if !okA || !okB {
			return 0, false
		}
		return cmpInt(x, y), true
	default:
		x, okA := parseSemver(a)
		y, okB := parseSemver(b)
		if !okA || !okB {
			return 0, false
		}
		return x.compare(y), true
	}
}

// valid reports whether v is a comparable (non-placeholder) version.
func (o Ordering) valid(v string) bool {
	_, ok := o.compare(v, v)
	return ok
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// firstField trims space and drops anything after the first blank
// ("5662 (abc123)" -> "5662").
func firstField(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		s = s[:i]
	}
	return s
}

func allZero(ns []int) bool {
	for _, n := range ns {
		if n != 0 {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------- semver

type semver struct {
	nums [3]int
	pre  []string
}

func parseSemver(s string) (semver, bool) {
	s = firstField(s)
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	var v semver
	core := s
	if i := strings.IndexByte(s, '-'); i >= 0 {
		core = s[:i]
		pre := s[i+1:]
		if pre == "" {
			return semver{}, false
		}
		v.pre = strings.Split(pre, ".")
		for _, p := range v.pre {
			if p == "" {
				return semver{}, false
			}
		}
	}
	parts := strings.Split(core, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return semver{}, false
	}
	for i, p := range parts {
		n, ok := atoi(p)
		if !ok {
			return semver{}, false
		}
		v.nums[i] = n
	}
	if allZero(v.nums[:]) {
		return semver{}, false
	}
	return v, true
}

func (a semver) compare(b semver) int {
	for i := range a.nums {
		if c := cmpInt(a.nums[i], b.nums[i]); c != 0 {
			return c
		}
	}
	switch {
	case len(a.pre) == 0 && len(b.pre) == 0:
		return 0
	case len(a.pre) == 0:
		return 1
	case len(b.pre) == 0:
		return -1
	}
	for i := 0; i < len(a.pre) && i < len(b.pre); i++ {
		x, y := a.pre[i], b.pre[i]
		nx, okX := atoi(x)
		ny, okY := atoi(y)
		switch {
		case okX && okY:
			if c := cmpInt(nx, ny); c != 0 {
				return c
			}
		case okX:
			return -1
		case okY:
			return 1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
	}
	return cmpInt(len(a.pre), len(b.pre))
}

// atoi reads a non-empty run of ASCII digits (at most 9, so it cannot
// overflow).
func atoi(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// ----------------------------------------------------------------- build

func parseBuild(s string) (int, bool) {
	s = firstField(s)
	if len(s) > 1 && (s[0] == 'b' || s[0] == 'B') {
		s = s[1:]
	}
	n, ok := atoi(s)
	if !ok || n == 0 {
		return 0, false
	}
	return n, true
}

// ---------------------------------------------------------------- PEP 440

// pep440 is a parsed PEP 440 version. Phases use sentinels so that the
// comparison is one lexicographic walk: a dev release of a final version
// sorts before its pre-releases, a missing pre-release after them, a
// missing post-release before any, a missing dev release after any.
type pep440 struct {
	epoch   int
	release []int
	pre     [2]int // phase (-2 dev-only, 0 a, 1 b, 2 rc, 3 none), number
	post    int    // -1 none
	dev     int    // 1<<30 none
}

const noDev = 1 << 30

func parsePEP440(s string) (pep440, bool) {
	s = strings.ToLower(firstField(s))
	s = strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i] // local version label: ignored for ordering here
	}
	v := pep440{pre: [2]int{3, 0}, post: -1, dev: noDev}
	if i := strings.IndexByte(s, '!'); i >= 0 {
		e, ok := atoi(s[:i])
		if !ok {
			return pep440{}, false
		}
		v.epoch, s = e, s[i+1:]
	}
	// release: digits and dots
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	rel := strings.TrimSuffix(s[:i], ".")
	rest := s[i:]
	if rel == "" {
		return pep440{}, false
	}
	for _, p := range strings.Split(rel, ".") {
		n, ok := atoi(p)
		if !ok {
			return pep440{}, false
		}
		v.release = append(v.release, n)
	}
	if allZero(v.release) {
		return pep440{}, false
	}
	for len(v.release) > 1 && v.release[len(v.release)-1] == 0 {
		v.release = v.release[:len(v.release)-1]
	}
	for rest != "" {
		rest = strings.TrimLeft(rest, ".-_")
		word, num, tail := splitWordNum(rest)
		rest = tail
		switch word {
		case "a", "alpha":
			v.pre = [2]int{0, num}
		case "b", "beta":
			v.pre = [2]int{1, num}
		case "rc", "c", "pre", "preview":
			v.pre = [2]int{2, num}
		case "post", "rev", "r":
			v.post = num
		case "dev":
			v.dev = num
		case "":
			if num >= 0 && v.post < 0 { // "1.0-1" is a post release
				v.post = num
				continue
			}
			return pep440{}, false
		default:
			return pep440{}, false
		}
	}
	if v.pre[0] == 3 && v.post < 0 && v.dev != noDev {
		v.pre[0] = -2 // X.devN sorts before X's pre-releases
	}
	return v, true
}

// splitWordNum splits "rc2.post1" into "rc", 2, ".post1". A missing
// number is 0.
func splitWordNum(s string) (string, int, string) {
	i := 0
	for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		i++
	}
	word := s[:i]
	s = strings.TrimLeft(s[i:], ".-_")
	j := 0
	for j < len(s) && s[j] >= '0' && s[j] <= '9' {
		j++
	}
	n := 0
	if j > 0 {
		var ok bool
		if n, ok = atoi(s[:j]); !ok {
			n = 1<<29 - 1
		}
	} else if word == "" {
		return "", -1, s
	}
	return word, n, s[j:]
}

func (a pep440) compare(b pep440) int {
	if c := cmpInt(a.epoch, b.epoch); c != 0 {
		return c
	}
	for i := 0; i < max(len(a.release), len(b.release)); i++ {
		x, y := 0, 0
		if i < len(a.release) {
			x = a.release[i]
		}
		if i < len(b.release) {
			y = b.release[i]
		}
		if c := cmpInt(x, y); c != 0 {
			return c
		}
	}
	for _, c := range []int{cmpInt(a.pre[0], b.pre[0]), cmpInt(a.pre[1], b.pre[1]), cmpInt(a.post, b.post), cmpInt(a.dev, b.dev)} {
		if c != 0 {
			return c
		}
	}
	return 0
}

// String forms used in tests and messages.
func (o Ordering) String() string { return string(o) }
