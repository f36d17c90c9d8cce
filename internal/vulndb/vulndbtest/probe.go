// Package vulndbtest provides test helpers for code that judges versions
// against internal/vulndb data.
package vulndbtest

import (
	"strconv"

	"github.com/llmfence/llmfence/internal/vulndb"
)

// Probe proposes, from a vulnerability's first comparable range (or its
// version list), a version that the range contains, a version just outside
// it ("" when none can be named), and the fix a report should name for the
// inside version ("" when the range has no fixed event). It reads the
// events directly and never evaluates them, so tests can check the
// evaluation against it. inside is "" when only GIT ranges exist.
func Probe(v vulndb.Vuln) (inside, outside, fixed string) {
	o := v.Ordering()
	for _, a := range v.Affected() {
		for _, rg := range a.Ranges {
			if rg.Type == vulndb.RangeGit {
				continue
			}
			ord := o
			if rg.Type == vulndb.RangeSemver {
				ord = vulndb.OrderSemver
			}
			var intro, fix, last string
			for _, e := range rg.Events {
				switch {
				case e.Introduced != "" && e.Introduced != "0":
					intro = e.Introduced
				case e.Fixed != "":
					fix = e.Fixed
				case e.LastAffected != "":
					last = e.LastAffected
				}
			}
			switch {
			case last != "":
				return last, Next(ord, last), ""
			case fix != "":
				return Before(ord, fix), fix, fix
			case intro != "":
				return intro, Before(ord, intro), ""
			default:
				return first(ord), "", ""
			}
		}
		if len(a.Versions) > 0 {
			return a.Versions[0], "", ""
		}
	}
	return "", "", ""
}

// Next returns a version just above v: the last number plus one.
func Next(o vulndb.Ordering, v string) string {
	i := len(v)
	for i > 0 && v[i-1] >= '0' && v[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(v[i:])
	if err != nil {
		return v + ".1"
	}
	return v[:i] + strconv.Itoa(n+1)
}

// Before returns a version just below v: a pre-release of it (semver
// "-rc1", PEP 440 "rc1"), or the previous build number.
func Before(o vulndb.Ordering, v string) string {
	switch o {
	case vulndb.OrderBuild:
		i := len(v)
		for i > 0 && v[i-1] >= '0' && v[i-1] <= '9' {
			i--
		}
		n, _ := strconv.Atoi(v[i:])
		return v[:i] + strconv.Itoa(n-1)
	case vulndb.OrderPyPI:
		return v + "rc1"
	}
	return v + "-rc1"
}

func first(o vulndb.Ordering) string {
	if o == vulndb.OrderBuild {
		return "b1"
	}
	return "0.1.0"
}
