package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string // substring of the error; "" = no error
	}{
		{"0", 0, ""},
		{"90s", 90 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"30d", 30 * Day, ""},
		{"1w", Week, ""},
		{"1w2d12h", Week + 2*Day + 12*time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{".5d", 12 * time.Hour, ""},
		{"-5h", -5 * time.Hour, ""},
		{"-2d", -2 * Day, ""},
		{"+3m", 3 * time.Minute, ""},
		{" 24h ", 24 * time.Hour, ""},
		{"300ms", 300 * time.Millisecond, ""},
		{"15250w", 15250 * Week, ""},
		{"", 0, "invalid duration"},
		{"-", 0, "invalid duration"},
		{"5", 0, "missing unit"},
		{"5x", 0, "unknown unit \"x\""},
		{"d", 0, "invalid duration"},
		{"1..5d", 0, "invalid duration"},
		{"1.2.3d", 0, "invalid duration"},
		{"16000w", 0, "too long"},
		{"99999999999999999999d", 0, "too long"},
		{"15000w15000w", 0, "too long"},
		{"1d 2h", 0, "unknown unit"},
	} {
		got, err := ParseDuration(tc.in)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("ParseDuration(%q): %v", tc.in, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseDuration(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.err)
		case tc.err == "" && got != tc.want:
			t.Errorf("ParseDuration(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFormatDurationRoundTrip(t *testing.T) {
	for _, d := range []time.Duration{0, time.Second, 90 * time.Minute, Day, 30 * Day, 2 * Week, 36 * time.Hour, -time.Hour} {
		s := FormatDuration(d)
		back, err := ParseDuration(s)
		if err != nil || back != d {
			t.Errorf("FormatDuration(%v) = %q, which parses to %v, %v", d, s, back, err)
		}
	}
}

func TestDurationValueRules(t *testing.T) {
	for _, tc := range []struct {
		rule Rule
		in   string
		ok   bool
	}{
		{Any, "-5h", true},
		{NonNegative, "-5h", false},
		{NonNegative, "0", true},
		{NonNegative, "30d", true},
		{Positive, "0", false},
		{Positive, "0s", false},
		{Positive, "-1s", false},
		{Positive, "1ns", true},
	} {
		var d time.Duration
		v := NewDuration(&d, time.Minute, tc.rule)
		err := v.Set(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("rule %d, Set(%q): %v, want ok=%v", tc.rule, tc.in, err, tc.ok)
		}
		if !tc.ok && d != time.Minute {
			t.Errorf("rule %d, Set(%q) changed the value to %v", tc.rule, tc.in, d)
		}
	}
	var d time.Duration
	if v := NewDuration(&d, 30*Day, Positive); v.String() != "30d" || v.Type() != "duration" {
		t.Errorf("String %q, Type %q", v.String(), v.Type())
	}
}

func TestEnum(t *testing.T) {
	var s string
	e := NewEnum(&s, "auto", "auto", "always", "never")
	if s != "auto" {
		t.Fatalf("default not set: %q", s)
	}
	if err := e.Set("ALWAYS"); err != nil || s != "always" {
		t.Errorf("Set(ALWAYS): %v, %q", err, s)
	}
	err := e.Set("bogus")
	if err == nil || err.Error() != "want auto, always or never" || s != "always" {
		t.Errorf("Set(bogus): %v, value %q", err, s)
	}
	if e.Type() != "auto|always|never" {
		t.Errorf("Type %q", e.Type())
	}
}

func TestExitCode(t *testing.T) {
	termCtx, cancel := context.WithCancelCause(context.Background())
	cancel(fmt.Errorf("%s signal received", syscall.SIGTERM))
	intCtx, cancel2 := context.WithCancelCause(context.Background())
	cancel2(fmt.Errorf("%s signal received", syscall.SIGINT))
	bg := context.Background()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"ok", bg, nil, 0},
		{"findings", bg, Findingsf("2 services rated high"), 1},
		{"wrapped findings", bg, fmt.Errorf("scan: %w", Findingsf("x")), 1},
		{"usage", bg, Usagef("--since", "must not be negative"), 2},
		{"plain error", bg, errors.New("cannot open store"), 2},
		{"sigint", intCtx, fmt.Errorf("scan: %w", context.Canceled), 130},
		{"sigterm", termCtx, fmt.Errorf("scan: %w", context.Canceled), 143},
		{"cancel without signal", bg, context.Canceled, 130},
	} {
		if got := ExitCode(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: ExitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestUsageError(t *testing.T) {
	if got := Usagef("--since", "must not be negative").Error(); got != "--since: must not be negative" {
		t.Errorf("%q", got)
	}
	if got := Usagef("--since", "--since %q: bad", "x").Error(); got != `--since "x": bad` {
		t.Errorf("flag named twice: %q", got)
	}
	inner := errors.New("x")
	u := Usage("--db", inner)
	if !IsUsage(u) || !errors.Is(u, inner) || Usage("--other", u) != u || Usage("--db", nil) != nil {
		t.Error("Usage does not wrap once")
	}
}

func TestApprox(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                                 "0s",
		45 * time.Second:                  "45s",
		12*time.Minute + 30*time.Second:   "12m30s",
		7*time.Hour + 5*time.Minute:       "7h05m",
		3*Day + 4*time.Hour + time.Minute: "3d4h",
		7794 * time.Hour:                  "325 days",
	} {
		if got := Approx(d); got != want {
			t.Errorf("Approx(%v) = %q, want %q", d, got, want)
		}
	}
}
