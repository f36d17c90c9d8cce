package limits

import (
	"context"
	"testing"
	"time"
)

func newMemoryFactory(t *testing.T, opts Options) Limiter { return NewMemory(opts, nil) }

func TestMemorySuite(t *testing.T) { runSuite(t, newMemoryFactory) }

func TestMemoryEvictsIdleKeys(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock(time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC))
	m := NewMemory(Options{Now: clock.Now, Lease: 3 * time.Hour}, nil)

	// "spent" uses tokens this month; "counted" only requests; "held" keeps
	// a request in flight.
	r, err := m.Admit(ctx, "spent", Limits{Monthly: 1000}, Want{Completion: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(ctx, 1, 2); err != nil {
		t.Fatal(err)
	}
	r, err = m.Admit(ctx, "counted", Limits{RPM: 10}, Want{Completion: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx); err != nil {
		t.Fatal(err)
	}
	held, err := m.Admit(ctx, "held", Limits{Concurrent: 1}, Want{Completion: 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.keyCount(); got != 3 {
		t.Fatalf("keys = %d, want 3", got)
	}

	steps := []struct {
		advance time.Duration
		want    int
		why     string
	}{
		{30 * time.Second, 3, "windows still hold the requests"},
		{2 * time.Minute, 2, "counted's window is empty; spent has monthly usage, held is in flight"},
		{60 * time.Minute, 1, "a new month: spent's usage belongs to the old one; held still in flight"},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		// any admission may trigger the sweep; use a throwaway key and settle it
		r, err := m.Admit(ctx, "probe", Limits{}, Want{Completion: 0})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Release(ctx); err != nil {
			t.Fatal(err)
		}
		// probe holds a request bucket itself
		if got := m.keyCount() - 1; got != s.want {
			t.Fatalf("after +%s: %d keys besides probe, want %d (%s)", s.advance, got, s.want, s.why)
		}
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := m.Usage(ctx, "spent")
	if err != nil || u != (Usage{}) {
		t.Fatalf("usage of evicted key = %+v, %v; want zero", u, err)
	}
}

func TestResolve(t *testing.T) {
	def := Limits{RPM: 60, TPM: 40000, Concurrent: 4, Daily: 2_000_000, Monthly: 0}
	tests := []struct {
		name string
		own  *Limits
		want Limits
	}{
		{"no own limits", nil, def},
		{"all inherited", &Limits{}, def},
		{"override some", &Limits{RPM: 10, Monthly: 5}, Limits{RPM: 10, TPM: 40000, Concurrent: 4, Daily: 2_000_000, Monthly: 5}},
		{"explicitly unlimited", &Limits{TPM: Unlimited, Daily: Unlimited}, Limits{RPM: 60, TPM: Unlimited, Concurrent: 4, Daily: Unlimited}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Resolve(tt.own, def); got != tt.want {
				t.Errorf("Resolve = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLimitErrorMessage(t *testing.T) {
	tests := []struct {
		err     LimitError
		msg     string
		seconds int64
	}{
		{LimitError{Key: "alice", Reason: ReasonRPM, Limit: 60, RetryAfter: 12300 * time.Millisecond},
			`requests-per-minute limit of 60 reached for key "alice"; retry in 12s`, 13},
		{LimitError{Key: "bob", Reason: ReasonDaily, Limit: 2000000, RetryAfter: 3 * time.Hour},
			`daily token budget of 2000000 reached for key "bob"; retry in 3h0m0s`, 10800},
		{LimitError{Key: "c", Reason: ReasonConcurrent, Limit: 2, RetryAfter: 0},
			`concurrent-request limit of 2 reached for key "c"; retry in 0s`, 1},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.msg {
			t.Errorf("Error() = %q, want %q", got, tt.msg)
		}
		if got := tt.err.RetryAfterSeconds(); got != tt.seconds {
			t.Errorf("RetryAfterSeconds() = %d, want %d", got, tt.seconds)
		}
	}
}

// Usage read back from the audit log at start counts against the day, the
// month and the minute, so a restart does not hand out fresh budgets.
func TestMemorySeed(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 30, 23, 59, 30, 0, time.UTC))
	m := NewMemory(Options{Now: clock.Now}, nil)
	day, month := m.PeriodStarts(clock.Now())
	if !day.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) || !month.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("PeriodStarts = %v, %v", day, month)
	}
	m.Seed("k", 90, 990, 40)
	ctx := context.Background()
	if _, err := m.Admit(ctx, "k", Limits{Daily: 100}, Want{Prompt: 10}); err == nil {
		t.Error("a seeded day with 10 tokens left admitted a 10-token prompt")
	}
	r, err := m.Admit(ctx, "k", Limits{Daily: 100, Monthly: 1000, TPM: 60}, Want{Completion: 50})
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxTokens != 10 {
		t.Errorf("MaxTokens %d, want the 10 left of the seeded month and day", r.MaxTokens)
	}
	r.Release(ctx)
	if _, err := m.Admit(ctx, "k", Limits{TPM: 40}, Want{}); err == nil {
		t.Error("the seeded minute did not count against TPM")
	}
	clock.Advance(time.Minute) // a new day and month
	if r, err := m.Admit(ctx, "k", Limits{Daily: 100, Monthly: 1000}, Want{}); err != nil || r.MaxTokens != 100 {
		t.Errorf("next day: %+v, %v", r, err)
	}
}
