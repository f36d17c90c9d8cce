package vulndb

import "sort"

// Verdict is what a record says about one version of one product.
type Verdict struct {
	// Affected is true when a range or the version list contains the
	// version.
	Affected bool
	// Fixed is the lowest fixed version above the version in a range that
	// contains it; empty when none is listed (no fix yet, or only a
	// last_affected bound).
	Fixed string
	// Comparable is false when nothing in the record could be compared
	// with the version (an unknown or placeholder version, GIT ranges
	// only, bounds in another format); Affected is then false.
	Comparable bool
}

// evaluate applies OSV range semantics to one affected entry.
func evaluate(a *Affected, o Ordering, v string) Verdict {
	var out Verdict
	if !o.valid(v) {
		return out
	}
	for _, w := range a.Versions {
		if c, ok := o.compare(v, w); ok {
			out.Comparable = true
			if c == 0 {
				out.Affected = true
			}
		}
	}
	for i := range a.Ranges {
		rg := &a.Ranges[i]
		ord := o
		switch rg.Type {
		case RangeSemver:
			ord = OrderSemver
		case RangeEcosystem:
		default:
			continue // GIT: commits, not comparable with a reported version
		}
		in, fixed, ok := inRange(rg.Events, ord, v)
		if !ok {
			continue
		}
		out.Comparable = true
		if in {
			out.Affected = true
			if fixed != "" {
				if out.Fixed == "" {
					out.Fixed = fixed
				} else if c, _ := ord.compare(fixed, out.Fixed); c < 0 {
					out.Fixed = fixed
				}
			}
		}
	}
	return out
}

// event is a range event with its kind and bound.
type event struct {
	kind  byte // 'i' introduced, 'f' fixed, 'l' last_affected, 'x' limit
	bound string
	zero  bool // introduced "0": before every version
}

// inRange evaluates one range (OSV's algorithm): events sorted by version,
// the version is affected when the last event at or below it that changes
// the state is an introduced one. ok is false when a bound cannot be read
// in the ordering.
func inRange(events []Event, o Ordering, v string) (in bool, fixed string, ok bool) {
	evs := make([]event, 0, len(events))
	var limits []string
	for _, e := range events {
		switch {
		case e.Introduced != "":
			if e.Introduced == "0" {
				evs = append(evs, event{kind: 'i', zero: true})
				continue
			}
			evs = append(evs, event{kind: 'i', bound: e.Introduced})
		case e.Fixed != "":
			evs = append(evs, event{kind: 'f', bound: e.Fixed})
		case e.LastAffected != "":
			evs = append(evs, event{kind: 'l', bound: e.LastAffected})
		case e.Limit != "":
			if e.Limit != "*" {
				limits = append(limits, e.Limit)
			}
			continue
		}
		if b := evs[len(evs)-1]; !b.zero && !o.valid(b.bound) {
			return false, "", false
		}
	}
	for _, l := range limits {
		if !o.valid(l) {
			return false, "", false
		}
	}
	if len(limits) > 0 {
		below := false
		for _, l := range limits {
			if c, _ := o.compare(v, l); c < 0 {
				below = true
			}
		}
		if !below {
			return false, "", true
		}
	}
	sort.SliceStable(evs, func(i, j int) bool {
		a, b := evs[i], evs[j]
		if a.zero || b.zero {
			return a.zero && !b.zero
		}
		c, _ := o.compare(a.bound, b.bound)
		return c < 0
	})
	for _, e := range evs {
		var c int
		if !e.zero {
			c, _ = o.compare(v, e.bound)
		}
		switch e.kind {
		case 'i':
			if e.zero || c >= 0 {
				in = true
			}
		case 'f':
			if c >= 0 {
				in = false
			}
		case 'l':
			if c > 0 {
				in = false
			}
		}
	}
	if in {
		for _, e := range evs {
			if e.kind == 'f' {
				if c, _ := o.compare(e.bound, v); c > 0 {
					return true, e.bound, true
				}
			}
		}
	}
	return in, "", true
}
