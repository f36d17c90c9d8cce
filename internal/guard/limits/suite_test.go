package limits

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/scenarios/*.golden (review the diff by hand)")

// fakeClock is a settable clock shared by limiter instances in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// factory builds a fresh, empty limiter with the given options. Every call
// must return a limiter that shares no state with earlier ones.
type factory func(t *testing.T, opts Options) Limiter

// runSuite runs the behavioural suite shared by every implementation.
func runSuite(t *testing.T, newLimiter factory) {
	t.Run("scenarios", func(t *testing.T) { runScenarios(t, newLimiter) })
	t.Run("hammer", func(t *testing.T) { runHammer(t, newLimiter) })
	t.Run("errors", func(t *testing.T) { runErrorChecks(t, newLimiter) })
}

// runScenarios replays testdata/scenarios/*.txt and compares the transcript
// with the matching .golden file. Both implementations must produce the
// same transcript.
func runScenarios(t *testing.T, newLimiter factory) {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios found: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			got := replay(t, file, newLimiter)
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("transcript differs from %s\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
		})
	}
}

// replay runs one scenario script. Lines:
//
//	start RFC3339 [lease=DURATION] [tz=OFFSET_HOURS]   (first line)
//	limits KEY [rpm=N] [tpm=N] [conc=N] [daily=N] [monthly=N]
//	admit KEY NAME [want=N] [prompt=N]
//	commit NAME PROMPT COMPLETION
//	release NAME
//	advance DURATION | advance-to RFC3339
//	usage KEY
func replay(t *testing.T, file string, newLimiter factory) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	var (
		out    strings.Builder
		clock  *fakeClock
		lim    Limiter
		limits = map[string]Limits{}
		res    = map[string]*Reservation{}
	)
	sc := bufio.NewScanner(f)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		args, kv := splitArgs(fields[1:])
		fail := func(format string, a ...any) {
			t.Fatalf("%s:%d: %s", file, lineNo, fmt.Sprintf(format, a...))
		}
		if lim == nil && fields[0] != "start" {
			fail("first command must be start")
		}
		fmt.Fprintf(&out, "> %s\n", line)
		switch fields[0] {
		case "start":
			start, err := time.Parse(time.RFC3339Nano, args[0])
			if err != nil {
				fail("%v", err)
			}
			clock = newFakeClock(start)
			opts := Options{Now: clock.Now}
			if v, ok := kv["lease"]; ok {
				opts.Lease = mustDuration(t, v)
			}
			if v, ok := kv["tz"]; ok {
				h, _ := strconv.Atoi(v)
				opts.Location = time.FixedZone("test", h*3600)
			}
			lim = newLimiter(t, opts)
		case "limits":
			limits[args[0]] = Limits{
				RPM: int(kvInt(kv, "rpm")), TPM: int(kvInt(kv, "tpm")), Concurrent: int(kvInt(kv, "conc")),
				Daily: kvInt(kv, "daily"), Monthly: kvInt(kv, "monthly"),
			}
		case "admit":
			r, err := lim.Admit(ctx, args[0], limits[args[0]], Want{Prompt: kvInt(kv, "prompt"), Completion: kvInt(kv, "want")})
			var le *LimitError
			switch {
			case err == nil:
				res[args[1]] = r
				if r.Prompt > 0 {
					fmt.Fprintf(&out, "ok max=%d prompt=%d capped=%t\n", r.MaxTokens, r.Prompt, r.Capped)
				} else {
					fmt.Fprintf(&out, "ok max=%d capped=%t\n", r.MaxTokens, r.Capped)
				}
			case errors.As(err, &le):
				if !errors.Is(err, ErrLimited) {
					fail("LimitError does not match ErrLimited")
				}
				if le.Exceeds {
					fmt.Fprintf(&out, "limited reason=%s limit=%d exceeds\n", le.Reason, le.Limit)
				} else {
					fmt.Fprintf(&out, "limited reason=%s limit=%d retry=%s\n", le.Reason, le.Limit, le.RetryAfter)
				}
			default:
				fail("admit: %v", err)
			}
		case "commit", "release":
			r := res[args[0]]
			if r == nil {
				fail("no reservation %q", args[0])
			}
			if fields[0] == "commit" {
				p, _ := strconv.ParseInt(args[1], 10, 64)
				c, _ := strconv.ParseInt(args[2], 10, 64)
				err = r.Commit(ctx, p, c)
			} else {
				err = r.Release(ctx)
			}
			if err != nil {
				fail("%s: %v", fields[0], err)
			}
			out.WriteString("ok\n")
		case "advance":
			clock.Advance(mustDuration(t, args[0]))
			fmt.Fprintf(&out, "now %s\n", clock.Now().UTC().Format(time.RFC3339Nano))
		case "advance-to":
			to, err := time.Parse(time.RFC3339Nano, args[0])
			if err != nil {
				fail("%v", err)
			}
			clock.Advance(to.Sub(clock.Now()))
			fmt.Fprintf(&out, "now %s\n", clock.Now().UTC().Format(time.RFC3339Nano))
		case "usage":
			u, err := lim.Usage(ctx, args[0])
			if err != nil {
				fail("usage: %v", err)
			}
			fmt.Fprintf(&out, "requests=%d tokens=%d inflight=%d reserved=%d daily=%d monthly=%d\n",
				u.Requests, u.Tokens, u.InFlight, u.Reserved, u.Daily, u.Monthly)
		default:
			fail("unknown command %q", fields[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func splitArgs(fields []string) ([]string, map[string]string) {
	var args []string
	kv := map[string]string{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			kv[k] = v
		} else {
			args = append(args, f)
		}
	}
	return args, kv
}

func kvInt(kv map[string]string, k string) int64 {
	n, _ := strconv.ParseInt(kv[k], 10, 64)
	return n
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runErrorChecks covers argument handling shared by both implementations.
func runErrorChecks(t *testing.T, newLimiter factory) {
	clock := newFakeClock(time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC))
	lim := newLimiter(t, Options{Now: clock.Now})
	ctx := context.Background()

	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := lim.Admit(cctx, "k", Limits{RPM: 5}, Want{Completion: 0}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Admit with cancelled context: err = %v, want context.Canceled", err)
		}
	})
	t.Run("settle once", func(t *testing.T) {
		l := Limits{Daily: 1000, Concurrent: 1}
		r, err := lim.Admit(ctx, "once", l, Want{Completion: 100})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := r.Commit(ctx, 10, 20); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Release(ctx); err != nil {
			t.Fatal(err)
		}
		u, err := lim.Usage(ctx, "once")
		if err != nil {
			t.Fatal(err)
		}
		if u.Daily != 30 || u.InFlight != 0 || u.Reserved != 0 {
			t.Fatalf("after repeated settles usage = %+v, want daily=30 inflight=0 reserved=0", u)
		}
	})
	t.Run("negative counts", func(t *testing.T) {
		r, err := lim.Admit(ctx, "neg", Limits{Daily: 1000}, Want{Completion: 0})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Commit(ctx, -5, 7); err != nil {
			t.Fatal(err)
		}
		u, _ := lim.Usage(ctx, "neg")
		if u.Daily != 7 {
			t.Fatalf("daily = %d, want 7 (negative prompt ignored)", u.Daily)
		}
	})
}

// runHammer checks that many goroutines on one key never get past a limit.
// The clock is frozen, so every admission falls in one window.
func runHammer(t *testing.T, newLimiter factory) {
	clock := newFakeClock(time.Date(2026, 11, 5, 10, 0, 0, 0, time.UTC))
	lim := newLimiter(t, Options{Now: clock.Now})
	hammerRPM(t, []Limiter{lim}, "rpm", 100, true)
	hammerConcurrent(t, []Limiter{lim}, "conc", 3)
	hammerBudget(t, []Limiter{lim}, "budget", Limits{Daily: 5000, TPM: 4000})
}

const (
	hammerWorkers  = 16
	hammerAttempts = 40
)

// hammerRPM: admitted requests never exceed rpm; with a frozen clock
// (exact=true) exactly rpm are admitted, as more than rpm attempts are made.
func hammerRPM(t *testing.T, lims []Limiter, key string, rpm int, exact bool) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	admitted := 0
	reasons := map[Reason]int{}
	var wg sync.WaitGroup
	for w := 0; w < hammerWorkers*len(lims); w++ {
		lim := lims[w%len(lims)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < hammerAttempts; i++ {
				r, err := lim.Admit(ctx, key, Limits{RPM: rpm}, Want{Completion: 0})
				mu.Lock()
				var le *LimitError
				switch {
				case err == nil:
					admitted++
				case errors.As(err, &le):
					reasons[le.Reason]++
				default:
					t.Errorf("admit: %v", err)
				}
				mu.Unlock()
				if r != nil {
					if err := r.Release(ctx); err != nil {
						t.Errorf("release: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if admitted > rpm {
		t.Errorf("admitted %d requests, limit is %d per minute", admitted, rpm)
	}
	if exact && admitted != rpm {
		t.Errorf("admitted %d requests, want exactly %d (frozen clock, %d attempts)", admitted, rpm, hammerWorkers*len(lims)*hammerAttempts)
	}
	if admitted == 0 {
		t.Errorf("nothing admitted")
	}
	for r, n := range reasons {
		if r != ReasonRPM {
			t.Errorf("%d refusals for %s, want only rpm", n, r)
		}
	}
}

// hammerConcurrent: requests held at once never exceed the limit. The
// counter goes up after admission and down before release, so what it sees
// is never more than what the limiter holds.
func hammerConcurrent(t *testing.T, lims []Limiter, key string, limit int) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	current, peak, admitted := 0, 0, 0
	var wg sync.WaitGroup
	for w := 0; w < hammerWorkers*len(lims); w++ {
		lim := lims[w%len(lims)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < hammerAttempts; i++ {
				r, err := lim.Admit(ctx, key, Limits{Concurrent: limit}, Want{Completion: 0})
				if err != nil {
					var le *LimitError
					if !errors.As(err, &le) || le.Reason != ReasonConcurrent {
						t.Errorf("admit: %v, want a concurrent-limit refusal", err)
					}
					continue
				}
				mu.Lock()
				current++
				admitted++
				peak = max(peak, current)
				mu.Unlock()
				time.Sleep(time.Millisecond) // hold the slot a little
				mu.Lock()
				current--
				mu.Unlock()
				if err := r.Release(ctx); err != nil {
					t.Errorf("release: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if peak > limit {
		t.Errorf("%d requests in flight at once, limit is %d", peak, limit)
	}
	if admitted < limit {
		t.Errorf("only %d admitted in %d attempts", admitted, hammerWorkers*len(lims)*hammerAttempts)
	}
}

// hammerBudget: tokens handed out (held reservations plus committed) never
// exceed the budget, and the limiter's count equals what was committed.
func hammerBudget(t *testing.T, lims []Limiter, key string, l Limits) {
	t.Helper()
	ctx := context.Background()
	budget := l.Daily
	if l.TPM > 0 && int64(l.TPM) < budget {
		budget = int64(l.TPM)
	}
	var mu sync.Mutex
	var held, committed, peak int64
	var wg sync.WaitGroup
	for w := 0; w < hammerWorkers*len(lims); w++ {
		lim := lims[w%len(lims)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < hammerAttempts; i++ {
				want := int64(1 + (w*7+i*13)%300)
				r, err := lim.Admit(ctx, key, l, Want{Completion: want})
				if err != nil {
					if !errors.Is(err, ErrLimited) {
						t.Errorf("admit: %v", err)
					}
					continue
				}
				if !r.Capped || r.MaxTokens < 1 || r.MaxTokens > want {
					t.Errorf("reservation max=%d capped=%t for want=%d", r.MaxTokens, r.Capped, want)
				}
				mu.Lock()
				held += r.MaxTokens
				peak = max(peak, held+committed)
				mu.Unlock()
				used := r.MaxTokens * int64(i%4) / 3 // 0, 1/3, 2/3 or all of it
				mu.Lock()
				held -= r.MaxTokens
				committed += used
				mu.Unlock()
				if err := r.Commit(ctx, 0, used); err != nil {
					t.Errorf("commit: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if peak > budget {
		t.Errorf("%d tokens handed out or used at once, budget is %d", peak, budget)
	}
	if committed > budget {
		t.Errorf("%d tokens committed, budget is %d", committed, budget)
	}
	u, err := lims[0].Usage(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if u.Daily != committed || u.Tokens != committed || u.InFlight != 0 || u.Reserved != 0 {
		t.Errorf("usage %+v, want daily=tokens=%d and nothing in flight", u, committed)
	}
	if committed < budget/2 {
		t.Errorf("only %d of %d tokens used; the hammer should nearly exhaust the budget", committed, budget)
	}
}
