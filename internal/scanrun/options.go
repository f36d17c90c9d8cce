package scanrun

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/targets"
)

// Options tune one scan. Start from DefaultOptions.
type Options struct {
	// Ports is the port specification for targets given without a port
	// ("11434,8000-8010"); "" means targets.DefaultPorts.
	Ports string `json:"ports,omitempty"`
	// Seed fixes the visiting order; 0 picks one at random.
	Seed uint64 `json:"seed,omitempty"`
	// Rate caps new connections per second across the whole scan (all
	// shards and workers of it); 0 means unlimited.
	Rate float64 `json:"rate"`
	// Concurrency caps TCP connects in flight.
	Concurrency int `json:"concurrency"`
	// Fingerprints caps services fingerprinted at once.
	Fingerprints int `json:"fingerprints"`
	// Timeout bounds one TCP connect and one HTTP request.
	Timeout time.Duration `json:"timeout"`
	// TargetBudget bounds the whole fingerprint of one service.
	TargetBudget time.Duration `json:"target_budget"`
	// Retries is the number of extra connects after a timeout.
	Retries int `json:"retries"`
	// Contact is added to the User-Agent.
	Contact string `json:"contact,omitempty"`
	// Active sends one harmless generate per service.
	Active bool `json:"active,omitempty"`
	// KeepHTTP keeps HTTP services that match no LLM server.
	KeepHTTP bool `json:"keep_http,omitempty"`
	// FailOn, when set, makes Summary.FailOnTripped true once a service
	// is rated at least this.
	FailOn service.Severity `json:"fail_on,omitempty"`
	// AllowReserved lifts the scope guard: without it the reserved ranges
	// of targets.ReservedRanges (multicast, class E, 0.0.0.0/8, the
	// documentation ranges, ...) are left out of every scan.
	AllowReserved bool `json:"allow_reserved,omitempty"`
	// NoDNS never resolves host names: a name among the targets or
	// exclusions is a usage error.
	NoDNS bool `json:"no_dns,omitempty"`

	// SaveBatch is how many services are saved per store transaction.
	SaveBatch int `json:"-"`
	// SaveRetryFor is how long a batch the store refuses is retried.
	SaveRetryFor time.Duration `json:"-"`
	// Heartbeat is how often the run's heartbeat is recorded.
	Heartbeat time.Duration `json:"-"`
}

// DefaultOptions are the defaults of `llmfence scan`, in one place.
func DefaultOptions() Options {
	return Options{
		Rate:         2000,
		Concurrency:  scan.DefaultOptions().Concurrency,
		Fingerprints: scan.DefaultOptions().Fingerprints,
		Timeout:      service.DefaultTimeout,
		TargetBudget: service.DefaultTargetBudget,
		Retries:      1,
		SaveBatch:    100,
		SaveRetryFor: 2 * time.Minute,
		Heartbeat:    store.DefaultHeartbeat,
	}
}

// DefaultPortSpec is the port specification of targets.DefaultPorts.
func DefaultPortSpec() string {
	ps := make([]string, len(targets.DefaultPorts))
	for i, p := range targets.DefaultPorts {
		ps[i] = strconv.Itoa(int(p))
	}
	return strings.Join(ps, ",")
}

// UsageError is a request that cannot run as given (a bad option or
// target); Flag names the flag at fault when there is one. It is the one
// usage-error type of every command (internal/cli).
type UsageError = cli.UsageError

func usage(flag, format string, args ...any) error { return cli.Usagef(flag, format, args...) }

// Validate checks the options and fills defaults for zero values that
// have no meaning of their own.
func (o *Options) Validate() error {
	if o.Ports == "" {
		o.Ports = DefaultPortSpec()
	}
	if _, err := targets.ParsePorts(o.Ports); err != nil {
		return &UsageError{Flag: "--ports", Err: err}
	}
	if o.Rate < 0 {
		return usage("--rate", "must be 0 (unlimited) or more, got %v", o.Rate)
	}
	if o.Concurrency < 1 {
		return usage("--concurrency", "must be at least 1, got %d", o.Concurrency)
	}
	if o.Fingerprints < 1 {
		return usage("--fingerprints", "must be at least 1, got %d", o.Fingerprints)
	}
	if o.Timeout <= 0 {
		return usage("--timeout", "must be positive, got %v", o.Timeout)
	}
	if o.TargetBudget <= 0 {
		return usage("--target-budget", "must be more than 0, got %v (it bounds the time spent on one service)", o.TargetBudget)
	}
	if o.Retries < 0 {
		return usage("--retries", "must be 0 or more, got %d", o.Retries)
	}
	if o.FailOn != "" {
		sev, ok := service.ParseSeverity(string(o.FailOn))
		if !ok || sev == service.SeverityNone {
			return usage("--fail-on", "%q: want info, low, medium, high or critical", o.FailOn)
		}
		o.FailOn = sev
	}
	d := DefaultOptions()
	if o.SaveBatch <= 0 {
		o.SaveBatch = d.SaveBatch
	}
	if o.SaveRetryFor <= 0 {
		o.SaveRetryFor = d.SaveRetryFor
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = d.Heartbeat
	}
	return nil
}

// Targets is what to scan: specs (addresses, CIDRs, ranges, names, URLs),
// files of specs ("-" is standard input), and exclusions.
type Targets struct {
	Include      []string `json:"include,omitempty"`
	InputLists   []string `json:"input_lists,omitempty"`
	Exclude      []string `json:"exclude,omitempty"`
	ExcludeFiles []string `json:"exclude_files,omitempty"`
	// Stdin is read for "-"; nil means os.Stdin.
	Stdin io.Reader `json:"-"`
}

// Describe is the run's target list as recorded: the specs, then
// "-iL FILE" and "--exclude SPEC" entries.
func (t Targets) Describe() []string {
	out := append([]string(nil), t.Include...)
	for _, f := range t.InputLists {
		out = append(out, "-iL "+f)
	}
	for _, x := range t.Exclude {
		out = append(out, "--exclude "+x)
	}
	for _, f := range t.ExcludeFiles {
		out = append(out, "--exclude-file "+f)
	}
	return out
}

// Empty reports whether no target was given.
func (t Targets) Empty() bool { return len(t.Include) == 0 && len(t.InputLists) == 0 }

// ScopeKey identifies what a scan covers: the same specs, exclusions and
// ports in any order give the same key. A file is identified by its
// content; standard input cannot be read twice, so a scan of it has a scope
// of its own.
func ScopeKey(t Targets, portSpec string) (string, error) {
	h := sha256.New()
	ports, err := targets.ParsePorts(portSpec)
	if err != nil {
		return "", &UsageError{Flag: "--ports", Err: err}
	}
	ports = slices.Clone(ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	fmt.Fprintf(h, "ports:%v\n", ports)
	list := func(tag string, specs []string) {
		s := make([]string, 0, len(specs))
		for _, sp := range specs {
			for _, f := range strings.FieldsFunc(sp, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
				s = append(s, strings.ToLower(f))
			}
		}
		slices.Sort(s)
		s = slices.Compact(s)
		for _, x := range s {
			fmt.Fprintf(h, "%s:%s\n", tag, x)
		}
	}
	files := func(tag string, names []string) error {
		var sums []string
		for _, n := range names {
			if n == "-" {
				sums = append(sums, "stdin:"+strconv.FormatInt(time.Now().UnixNano(), 10))
				continue
			}
			f, err := os.Open(n)
			if err != nil {
				return &UsageError{Err: fmt.Errorf("cannot read target file: %w", err)}
			}
			fh := sha256.New()
			_, err = io.Copy(fh, f)
			f.Close()
			if err != nil {
				return &UsageError{Err: fmt.Errorf("cannot read target file %s: %w", n, err)}
			}
			sums = append(sums, hex.EncodeToString(fh.Sum(nil)))
		}
		slices.Sort(sums)
		for _, s := range sums {
			fmt.Fprintf(h, "%s:%s\n", tag, s)
		}
		return nil
	}
	list("in", t.Include)
	list("ex", t.Exclude)
	if err := files("inf", t.InputLists); err != nil {
		return "", err
	}
	if err := files("exf", t.ExcludeFiles); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// Spec is a scan definition stored with a sharded run: what workers need
// to rebuild the same target set and scan their shard of it. Targets must
// be inline (files are read when the run is created).
type Spec struct {
	Targets Targets `json:"targets"`
	Options Options `json:"options"`
}

// EncodeSpec returns the stored form of a spec.
func EncodeSpec(s Spec) (string, error) {
	if len(s.Targets.InputLists) > 0 || len(s.Targets.ExcludeFiles) > 0 {
		return "", errors.New("a sharded scan takes its targets inline, not from files")
	}
	b, err := json.Marshal(s)
	return string(b), err
}

// DecodeSpec reads a stored spec, refusing unknown fields.
func DecodeSpec(raw string) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("stored scan definition: %w", err)
	}
	return s, nil
}
