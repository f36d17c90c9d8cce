package cli

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units ParseDuration adds to Go's.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// durationHelp is the accepted syntax, for error messages.
const durationHelp = "want a number and a unit (ns, us, ms, s, m, h, d = 24h, w = 7d), e.g. 90s, 24h, 30d, 1w2d"

// ParseDuration parses a Go duration ("90s", "1h30m", "-5m") that may also
// use the units d (24 hours) and w (7 days), alone or mixed with the others
// ("30d", "1.5d", "1w2d12h"). "0" needs no unit.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	rest := in
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	if rest == "0" {
		return 0, nil
	}
	if rest == "" {
		return 0, fmt.Errorf("invalid duration %q: %s", s, durationHelp)
	}
	var total time.Duration
	add := func(d time.Duration) bool {
		if d < 0 || total > math.MaxInt64-d {
			return false
		}
		total += d
		return true
	}
	tooLong := fmt.Errorf("invalid duration %q: too long (at most about 292 years)", s)
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		num := rest[:i]
		j := i
		for j < len(rest) && !(rest[j] == '.' || rest[j] >= '0' && rest[j] <= '9') {
			j++
		}
		unit := rest[i:j]
		rest = rest[j:]
		if num == "" || num == "." {
			return 0, fmt.Errorf("invalid duration %q: %s", s, durationHelp)
		}
		var scale time.Duration
		switch unit {
		case "d":
			scale = Day
		case "w":
			scale = Week
		case "":
			return 0, fmt.Errorf("invalid duration %q: missing unit after %s (%s)", s, num, durationHelp)
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: unknown unit %q (%s)", s, unit, durationHelp)
			}
			if !add(d) {
				return 0, tooLong
			}
			continue
		}
		d, err := scaled(num, scale)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %s", s, durationHelp)
		}
		if d < 0 || !add(d) {
			return 0, tooLong
		}
	}
	if neg {
		total = -total
	}
	return total, nil
}

// scaled is num (digits, maybe one '.') times unit, exactly for whole
// numbers; -1 when it does not fit.
func scaled(num string, unit time.Duration) (time.Duration, error) {
	whole, frac, _ := strings.Cut(num, ".")
	if strings.Contains(frac, ".") {
		return 0, errors.New("two decimal points")
	}
	var w int64
	if whole != "" {
		var err error
		if w, err = strconv.ParseInt(whole, 10, 64); err != nil {
			return -1, nil
		}
	}
	if w > math.MaxInt64/int64(unit) {
		return -1, nil
	}
	d := time.Duration(w) * unit
	if frac != "" {
		f, err := strconv.ParseFloat("0."+frac, 64)
		if err != nil {
			return 0, err
		}
		d += time.Duration(f * float64(unit))
	}
	return d, nil
}

// FormatDuration writes d the way ParseDuration reads it, preferring whole
// weeks and days ("30d", "1w", "36h0m0s" for a day and a half).
func FormatDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d > 0 && d%Week == 0:
		return strconv.FormatInt(int64(d/Week), 10) + "w"
	case d > 0 && d%Day == 0:
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	return d.String()
}

// Approx writes d for a person, to two units at most: "45s", "12m30s",
// "7h05m", "3d4h", "325 days".
func Approx(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String()
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	case d < Day:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	case d < 30*Day:
		return fmt.Sprintf("%dd%dh", d/Day, d%Day/time.Hour)
	}
	return fmt.Sprintf("%d days", (d+Day/2)/Day)
}

// Rule is what a duration flag accepts besides the syntax.
type Rule uint8

const (
	// Any accepts every duration, negative ones included.
	Any Rule = iota
	// NonNegative accepts 0 and more; say in the flag's help what 0 means.
	NonNegative
	// Positive accepts only more than 0.
	Positive
)

// ErrNegative and ErrNotPositive are the rule violations.
var (
	ErrNegative    = errors.New("must not be negative")
	ErrNotPositive = errors.New("must be more than 0")
)

// Check applies the rule to d.
func (r Rule) Check(d time.Duration) error {
	switch {
	case r == NonNegative && d < 0:
		return ErrNegative
	case r == Positive && d < 0:
		return ErrNegative
	case r == Positive && d == 0:
		return ErrNotPositive
	}
	return nil
}

// Duration is a flag value (it implements pflag.Value) for a duration
// read by ParseDuration and checked by a Rule. Register it with
// FlagSet.Var:
//
//	fl.Var(cli.NewDuration(&f.since, 0, cli.NonNegative), "since", "…")
type Duration struct {
	p    *time.Duration
	rule Rule
}

// NewDuration sets *p to def and returns the flag value that parses into p.
func NewDuration(p *time.Duration, def time.Duration, rule Rule) *Duration {
	*p = def
	return &Duration{p: p, rule: rule}
}

// Set parses s into the flag.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	if err := d.rule.Check(v); err != nil {
		return err
	}
	*d.p = v
	return nil
}

// String is the current value.
func (d *Duration) String() string {
	if d == nil || d.p == nil {
		return ""
	}
	return FormatDuration(*d.p)
}

// Type names the value in --help.
func (d *Duration) Type() string { return "duration" }
