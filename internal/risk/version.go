package risk

import (
	"strconv"
	"strings"
	"unicode"
)

// version is a parsed, comparable server version.
type version struct {
	nums []int  // release numbers: 0.1.34 -> [0 1 34]; llama.cpp b5662 -> [5662]
	pre  string // pre-release tag ("rc1", "dev12"); sorts before the release
	post int    // post-release number (vLLM "0.6.6.post1"); sorts after it
}

// parseVersion reads the version shapes LLM servers report: "0.1.34",
// "v0.4.0", "0.5.7-rc2", "0.6.6.post1", "0.8.5.dev12+gabc", llama.cpp build
// tags "b5662" or "5662 (abc123)". ok is false for anything without a
// release number and for placeholder versions made only of zeros ("0.0.0",
// Ollama development builds), which say nothing about the code.
func parseVersion(s string) (version, bool) {
	s = strings.TrimSpace(s)
	if f := strings.Fields(s); len(f) > 0 {
		s = f[0]
	}
	s = strings.TrimPrefix(strings.TrimPrefix(s, "v"), "V")
	if len(s) > 1 && (s[0] == 'b' || s[0] == 'B') && s[1] >= '0' && s[1] <= '9' {
		s = s[1:]
	}
	if i := strings.IndexByte(s, '+'); i >= 0 {
		s = s[:i]
	}
	var v version
	if i := strings.IndexByte(s, '-'); i >= 0 {
		v.pre = strings.ToLower(s[i+1:])
		s = s[:i]
		if v.pre == "" {
			return version{}, false
		}
	}
	if s == "" {
		return version{}, false
	}
	for i, part := range strings.Split(s, ".") {
		digits := 0
		for digits < len(part) && part[digits] >= '0' && part[digits] <= '9' {
			digits++
		}
		rest := strings.ToLower(part[digits:])
		if digits > 0 {
			n, err := strconv.Atoi(part[:digits])
			if err != nil {
				return version{}, false
			}
			if v.post > 0 {
				return version{}, false // numbers after ".postN"
			}
			v.nums = append(v.nums, n)
		}
		switch {
		case rest == "":
			if digits == 0 {
				return version{}, false // empty component: "1..2"
			}
		case strings.HasPrefix(rest, "post"):
			n, err := strconv.Atoi(strings.TrimLeftFunc(rest[4:], func(r rune) bool { return !unicode.IsDigit(r) }))
			if err != nil {
				n = 1
			}
			if n < 1 {
				n = 1
			}
			v.post = n
		default:
			if i == 0 && digits == 0 {
				return version{}, false // "latest", "unknown"
			}
			if v.pre != "" {
				v.pre = rest + "." + v.pre
			} else {
				v.pre = rest
			}
		}
	}
	if len(v.nums) == 0 {
		return version{}, false
	}
	zero := true
	for _, n := range v.nums {
		if n != 0 {
			zero = false
		}
	}
	if zero {
		return version{}, false
	}
	return v, true
}

func (a version) compare(b version) int {
	n := max(len(a.nums), len(b.nums))
	for i := range n {
		x, y := 0, 0
		if i < len(a.nums) {
			x = a.nums[i]
		}
		if i < len(b.nums) {
			y = b.nums[i]
		}
		if x != y {
			return sign(x - y)
		}
	}
	switch {
	case a.pre == "" && b.pre != "":
		return 1
	case a.pre != "" && b.pre == "":
		return -1
	case a.pre != b.pre:
		return comparePre(a.pre, b.pre)
	}
	return sign(a.post - b.post)
}

// comparePre orders pre-release tags, comparing digit runs as numbers so
// that rc10 sorts after rc9.
func comparePre(a, b string) int {
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		na, errA := strconv.Atoi(ca)
		nb, errB := strconv.Atoi(cb)
		switch {
		case errA == nil && errB == nil:
			if na != nb {
				return sign(na - nb)
			}
		case ca != cb:
			return strings.Compare(ca, cb)
		}
		a, b = ra, rb
	}
	return strings.Compare(a, b)
}

// chunk splits off the leading run of digits or of non-digits.
func chunk(s string) (string, string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}

// CompareVersions compares two server versions: the result is -1 when a is
// older than b, 0 when they are the same release, 1 when a is newer. ok is
// false when either version is unknown (empty, not a version, or a
// placeholder such as "0.0.0"); the result is then 0 and means nothing.
func CompareVersions(a, b string) (int, bool) {
	va, okA := parseVersion(a)
	vb, okB := parseVersion(b)
	if !okA || !okB {
		return 0, false
	}
	return va.compare(vb), true
}
