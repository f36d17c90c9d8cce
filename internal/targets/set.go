package targets

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strings"
	"unicode"
)

// Resolver resolves host names; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Target is one (address, port) pair to probe.
type Target struct {
	Addr netip.Addr
	Port uint16
	// Hostname is the host name the user gave for this address ("" for
	// literal addresses). Probes should send it as the HTTP Host and TLS
	// server name.
	Hostname string
	// TLS is true when the user gave an https:// URL for this pair.
	TLS bool
	// Scheme is "http" or "https" when the user gave a URL for this pair,
	// "" when they left the protocol open.
	Scheme string
}

// Options configures a Set.
type Options struct {
	// Ports are crossed with every spec that names no port. Required;
	// duplicates are dropped.
	Ports []uint16
	// Seed fixes the walk order: the same seed over the same input gives the
	// same order. 0 picks a random seed (Set.Seed reports it).
	Seed uint64
	// Resolver resolves host names. Nil is allowed only when no spec is a
	// host name.
	Resolver Resolver
	// BatchSize is how many specs are merged and permuted together; memory
	// is bounded by it, not by the size of the input. Default 1<<16.
	BatchSize int
	// MaxSeen bounds the disjoint address ranges remembered from earlier
	// batches so a pair repeated in a later batch is visited once
	// (32 bytes each; default DefaultMaxSeen). Past it, later batches
	// are still checked against what is remembered but add nothing, and
	// a repeat of a pair not remembered is visited again.
	MaxSeen int
	// Stdin is read for the spec "-" (default os.Stdin).
	Stdin io.Reader
	// TempDir is where standard input is spooled (default os.TempDir()).
	TempDir string
	// Logger receives debug messages (default slog.Default()).
	Logger *slog.Logger
	// Blocked are ranges left out of the set on every port, whatever the
	// specs say (the scope guard: ReservedRanges). Set.Blocked reports
	// which removed addresses. Nil blocks nothing.
	Blocked []Reserved
}

// DefaultBatchSize is the number of specs merged and permuted together when
// Options.BatchSize is 0.
const DefaultBatchSize = 1 << 16

// DefaultMaxSeen is Options.MaxSeen when 0: 32 MiB of ranges.
const DefaultMaxSeen = 1 << 20

// maxLineBytes bounds one line of a target file.
const maxLineBytes = 1 << 20

// SpecError is a spec that could not be used, with where it came from.
type SpecError struct {
	File string // file name as given, "-" for standard input; "" for a command-line spec
	Line int    // 1-based line in File
	Spec string
	Err  error
}

func (e *SpecError) Error() string {
	if e.File != "" {
		name := e.File
		if name == "-" {
			name = "<stdin>"
		}
		return fmt.Sprintf("%s:%d: %q: %v", name, e.Line, e.Spec, e.Err)
	}
	return fmt.Sprintf("%q: %v", e.Spec, e.Err)
}

func (e *SpecError) Unwrap() error { return e.Err }

// TooLargeError refuses a target set of more than 2^48 (address, port)
// pairs, the most the permutation handles (every IPv4 address on every
// port).
type TooLargeError struct {
	Count *big.Int // how many there are
	Unit  string   // "addresses" or "(address, port) pairs"
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("target set of %s %s is larger than the maximum 2^48; narrow it", e.Count, e.Unit)
}

// source is one place specs come from: the command line or a file.
type source struct {
	file string   // "" for command-line specs; name as the user gave it
	path string   // what to open (the spool file for standard input)
	args []string // command-line specs
}

// Set is a validated target set: include specs minus exclusions, crossed with
// ports. It holds the exclusions as merged intervals and re-reads include
// files batch by batch when walked; it never expands a CIDR or range.
type Set struct {
	ports     []uint16
	portSet   portBits
	seed      uint64
	resolver  Resolver
	batchSize int
	maxSeen   int
	log       *slog.Logger

	sources []source
	excl    exclusions
	// blocked are Options.Blocked; blockedAll their merged intervals;
	// hits[i] what blocked[i] removed, counted while counting is set
	// (NewSet's validation pass).
	blocked    []Reserved
	blockedAll []interval
	hits       []*big.Int
	counting   bool
	count      uint64
	batches    int
	only       *batch // the one batch, kept when the input fits in one
	spool      string // spooled standard input, removed by Close
	closed     bool
}

// portBits is a set of ports.
type portBits [65536 / 64]uint64

func (b *portBits) has(p uint16) bool { return b[p/64]&(1<<(p%64)) != 0 }
func (b *portBits) add(p uint16)      { b[p/64] |= 1 << (p % 64) }

// exclusions are merged intervals: ones that apply on every port and ones
// for a single port.
type exclusions struct {
	any    []interval
	byPort map[uint16][]interval
}

// NewSet parses and validates every spec, resolves host names, and counts
// the target set, before anything is walked. include and exclude hold specs
// (a comma- or space-separated list is split); includeFiles and excludeFiles
// name files with one or more specs per line ("#" starts a comment). "-",
// as a spec or a file, reads standard input, once; for includes it is
// spooled to a temporary file that Close removes.
func NewSet(ctx context.Context, opts Options, include, includeFiles, exclude, excludeFiles []string) (*Set, error) {
	s := &Set{
		seed:      opts.Seed,
		resolver:  opts.Resolver,
		batchSize: opts.BatchSize,
		maxSeen:   opts.MaxSeen,
		log:       opts.Logger,
	}
	if s.batchSize <= 0 {
		s.batchSize = DefaultBatchSize
	}
	if s.maxSeen <= 0 {
		s.maxSeen = DefaultMaxSeen
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if len(opts.Blocked) > 0 {
		s.blocked = append([]Reserved(nil), opts.Blocked...)
		s.hits = make([]*big.Int, len(s.blocked))
		ivs := make([]interval, 0, len(s.blocked))
		for i, r := range s.blocked {
			if !r.prefix.IsValid() { // built by the caller, not ReservedRanges
				p, err := netip.ParsePrefix(r.Prefix)
				if err != nil {
					return nil, fmt.Errorf("blocked range %q: %w", r.Prefix, err)
				}
				s.blocked[i].prefix = p.Masked()
			}
			ivs = append(ivs, prefixInterval(s.blocked[i].prefix))
		}
		s.blockedAll = mergeIntervals(ivs)
	}
	if len(opts.Ports) == 0 {
		return nil, errors.New("no ports to scan: give at least one port")
	}
	for _, p := range opts.Ports {
		if p == 0 {
			return nil, errors.New("port 0 cannot be scanned")
		}
		if !s.portSet.has(p) {
			s.portSet.add(p)
			s.ports = append(s.ports, p)
		}
	}
	for s.seed == 0 {
		s.seed = rand.Uint64()
	}
	stdin := opts.Stdin
	if stdin == nil {
		stdin = os.Stdin
	}
	usedStdin := false
	takeStdin := func() error {
		if usedStdin {
			return errors.New("standard input (\"-\") can be read only once")
		}
		usedStdin = true
		return nil
	}

	// Exclusions first: they are needed to count the includes.
	exclSrcs, err := splitSources(exclude, excludeFiles)
	if err != nil {
		return nil, err
	}
	for i := range exclSrcs {
		if exclSrcs[i].file == "-" {
			if err := takeStdin(); err != nil {
				return nil, err
			}
		}
	}
	if err := s.loadExclusions(ctx, exclSrcs, stdin); err != nil {
		return nil, err
	}

	s.sources, err = splitSources(include, includeFiles)
	if err != nil {
		return nil, err
	}
	for i := range s.sources {
		if s.sources[i].file != "-" {
			continue
		}
		if err := takeStdin(); err != nil {
			return nil, err
		}
		path, err := spoolStdin(stdin, opts.TempDir)
		if err != nil {
			return nil, err
		}
		s.spool, s.sources[i].path = path, path
	}
	if len(s.sources) == 0 {
		s.Close()
		return nil, errors.New("no targets given")
	}

	// Validation pass: build every batch once to check every spec and
	// count exactly.
	var first *batch
	total := new(big.Int)
	s.counting = true
	err = s.batchesOf(ctx, func(b *batch) error {
		s.batches++
		total.Add(total, new(big.Int).SetUint64(b.total))
		if total.Cmp(big.NewInt(maxPairs)) > 0 {
			return &TooLargeError{Count: total, Unit: "(address, port) pairs"}
		}
		if s.batches == 1 {
			first = b
		}
		return nil
	})
	s.counting = false
	if err != nil {
		s.Close()
		return nil, err
	}
	s.count = total.Uint64()
	if s.batches == 1 {
		s.only = first
	}
	s.log.Debug("target set ready", "pairs", s.count, "batches", s.batches, "ports", len(s.ports), "seed", s.seed)
	return s, nil
}

// Count is the number of (address, port) pairs Walk visits: exclusions are
// subtracted and duplicates merged, within a batch and across batches (up
// to Options.MaxSeen remembered ranges; see there).
func (s *Set) Count() uint64 { return s.count }

// Seed is the seed the walk order derives from (the one chosen at random
// when Options.Seed was 0).
func (s *Set) Seed() uint64 { return s.seed }

// Close removes the spooled standard input, if any. The Set cannot be walked
// afterwards.
func (s *Set) Close() error {
	s.closed = true
	if s.spool == "" {
		return nil
	}
	err := os.Remove(s.spool)
	s.spool = ""
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing spooled standard input: %w", err)
	}
	return nil
}

// Walk calls fn once for every (address, port) pair, batch after batch, in
// an order permuted per batch and fixed by the seed. It stops at the first
// error fn returns, returning it, and returns ctx's error promptly once ctx
// is done. Walk can be called again and gives the same order. Host names in
// inputs larger than one batch are resolved again; if their addresses
// changed since NewSet the walk follows the new answer. Walks may run
// concurrently with each other but not with Close.
func (s *Set) Walk(ctx context.Context, fn func(Target) error) error {
	if s.closed {
		return errors.New("target set is closed")
	}
	if s.only != nil {
		return s.walkBatch(ctx, s.only, 0, fn)
	}
	idx := uint64(0)
	return s.batchesOf(ctx, func(b *batch) error {
		err := s.walkBatch(ctx, b, idx, fn)
		idx++
		return err
	})
}

func (s *Set) walkBatch(ctx context.Context, b *batch, idx uint64, fn func(Target) error) error {
	if b.total == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(s.seed, idx))
	c := newCycle(b.total, rng)
	done := ctx.Done()
	for {
		i, ok := c.next()
		if !ok {
			return nil
		}
		select {
		case <-done:
			return ctx.Err()
		default:
		}
		if err := fn(b.target(i)); err != nil {
			return err
		}
	}
}

// splitSources turns command-line specs and file names into sources. A "-"
// among the specs means standard input, like "-" as a file.
func splitSources(specs, files []string) ([]source, error) {
	var srcs []source
	var args []string
	stdin := false
	for _, a := range specs {
		if strings.TrimSpace(a) == "-" {
			stdin = true
			continue
		}
		args = append(args, a)
	}
	if len(args) > 0 {
		srcs = append(srcs, source{args: args})
	}
	if stdin {
		srcs = append(srcs, source{file: "-"})
	}
	for _, f := range files {
		if f == "" {
			return nil, errors.New("empty file name")
		}
		src := source{file: f, path: f}
		if f == "-" {
			src.path = "" // read from standard input (or its spool)
		}
		srcs = append(srcs, src)
	}
	return srcs, nil
}

func spoolStdin(r io.Reader, dir string) (string, error) {
	f, err := os.CreateTemp(dir, "llmfence-targets-*.txt")
	if err != nil {
		return "", fmt.Errorf("spooling standard input: %w", err)
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("spooling standard input: %w", err)
	}
	return f.Name(), nil
}

// eachSpec calls fn with every spec of srcs, in order, and where it came
// from. A file "-" without a path is read from stdin.
func eachSpec(ctx context.Context, srcs []source, stdin io.Reader, fn func(src *source, line int, spec string) error) error {
	for i := range srcs {
		src := &srcs[i]
		if src.file == "" {
			for _, a := range src.args {
				for _, sp := range splitLine(a) {
					if err := ctx.Err(); err != nil {
						return err
					}
					if err := fn(src, 0, sp); err != nil {
						return err
					}
				}
			}
			continue
		}
		if err := eachFileSpec(ctx, src, stdin, fn); err != nil {
			return err
		}
	}
	return nil
}

func eachFileSpec(ctx context.Context, src *source, stdin io.Reader, fn func(src *source, line int, spec string) error) error {
	var r io.Reader
	if src.path == "" {
		r = stdin
	} else {
		f, err := os.Open(src.path)
		if err != nil {
			return fmt.Errorf("reading targets: %w", err)
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, sp := range splitLine(sc.Text()) {
			if err := fn(src, line, sp); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		name := src.file
		if name == "-" {
			name = "<stdin>"
		}
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%s:%d: line is longer than %d bytes", name, line+1, maxLineBytes)
		}
		return fmt.Errorf("reading %s: %w", name, err)
	}
	return nil
}

// splitLine drops a "#" comment and splits on white space and commas.
func splitLine(l string) []string {
	if i := strings.IndexByte(l, '#'); i >= 0 {
		l = l[:i]
	}
	return strings.FieldsFunc(l, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

func specErr(src *source, line int, spec string, err error) error {
	return &SpecError{File: src.file, Line: line, Spec: spec, Err: err}
}

// resolve looks a host name up, naming it in errors.
func (s *Set) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if s.resolver == nil {
		return nil, errors.New("cannot resolve host name: no resolver configured")
	}
	addrs, err := s.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("resolving host name: %w", err)
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap().WithZone("")
		if a.IsValid() && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("host name resolved to no addresses")
	}
	return out, nil
}

func (s *Set) loadExclusions(ctx context.Context, srcs []source, stdin io.Reader) error {
	var allPorts []interval
	byPort := map[uint16][]interval{}
	err := eachSpec(ctx, srcs, stdin, func(src *source, line int, raw string) error {
		sp, err := ParseSpec(raw)
		if err != nil {
			return specErr(src, line, raw, err)
		}
		add := func(iv interval) {
			if sp.Port == 0 {
				allPorts = append(allPorts, iv)
			} else {
				byPort[sp.Port] = append(byPort[sp.Port], iv)
			}
		}
		if sp.Kind != KindHost {
			add(sp.interval())
			return nil
		}
		addrs, err := s.resolve(ctx, sp.Host)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			return specErr(src, line, raw, err)
		}
		for _, a := range addrs {
			x := fromAddr(a)
			add(interval{x, x})
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.excl.any = mergeIntervals(allPorts)
	s.excl.byPort = make(map[uint16][]interval, len(byPort))
	for p, ivs := range byPort {
		s.excl.byPort[p] = mergeIntervals(ivs)
	}
	return nil
}

// batchesOf reads the include sources and calls fn with each batch of at
// most batchSize specs, merged, with exclusions removed.
func (s *Set) batchesOf(ctx context.Context, fn func(*batch) error) error {
	bb := newBuilder()
	seen := &seenPairs{byPort: map[uint16][]interval{}, max: s.maxSeen}
	flush := func() error {
		b, err := s.finish(bb, seen)
		if err != nil {
			return err
		}
		if seen.full && !seen.warned {
			seen.warned = true
			s.log.Warn("target input too scattered to remember every range across batches; a pair repeated far apart in it may be visited twice",
				"remembered_ranges", seen.n)
		}
		bb = newBuilder()
		return fn(b)
	}
	err := eachSpec(ctx, s.sources, nil, func(src *source, line int, raw string) error {
		sp, err := ParseSpec(raw)
		if err != nil {
			return specErr(src, line, raw, err)
		}
		if sp.Kind != KindHost {
			iv := sp.interval()
			if _, ok := iv.size(); !ok {
				return specErr(src, line, raw, &TooLargeError{Count: iv.bigSize(), Unit: "addresses"})
			}
			bb.add(iv, sp.Port, "", sp.Scheme)
		} else {
			addrs, ok := bb.resolved[sp.Host]
			if !ok {
				addrs, err = s.resolve(ctx, sp.Host)
				if err != nil {
					if ctx.Err() != nil {
						return err
					}
					return specErr(src, line, raw, err)
				}
				bb.resolved[sp.Host] = addrs
			}
			for _, a := range addrs {
				x := fromAddr(a)
				bb.add(interval{x, x}, sp.Port, sp.Host, sp.Scheme)
			}
		}
		bb.specs++
		if bb.specs >= s.batchSize {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if bb.specs > 0 {
		return flush()
	}
	return nil
}

// pairKey is one address on one port.
type pairKey struct {
	a    u128
	port uint16
}

// pairInfo is what the user said about one pair beyond its address.
type pairInfo struct {
	host   string
	scheme string
}

// builder collects one batch of specs.
type builder struct {
	specs    int
	any      []interval            // specs without a port
	byPort   map[uint16][]interval // specs with a port
	names    map[u128]string       // host names of portless host specs
	pairs    map[pairKey]pairInfo  // host names and schemes of specs with a port
	resolved map[string][]netip.Addr
}

func newBuilder() *builder {
	return &builder{
		byPort:   map[uint16][]interval{},
		names:    map[u128]string{},
		pairs:    map[pairKey]pairInfo{},
		resolved: map[string][]netip.Addr{},
	}
}

func (bb *builder) add(iv interval, port uint16, host, scheme string) {
	if port == 0 {
		bb.any = append(bb.any, iv)
		if host != "" {
			if _, ok := bb.names[iv.lo]; !ok {
				bb.names[iv.lo] = host
			}
		}
		return
	}
	bb.byPort[port] = append(bb.byPort[port], iv)
	if host != "" || scheme != "" {
		k := pairKey{iv.lo, port}
		pi := bb.pairs[k]
		if pi.host == "" {
			pi.host = host
		}
		if pi.scheme == "" {
			pi.scheme = scheme
		}
		bb.pairs[k] = pi
	}
}

// block is a list of address intervals crossed with a list of ports.
type block struct {
	ivs   []interval
	cum   []uint64 // cum[i]: addresses in ivs[:i+1]
	ports []uint16
	size  uint64 // len(addresses) × len(ports)
}

// batch is the merged, exclusion-free form of one batch of specs: disjoint
// blocks laid end to end in one index space 0..total-1.
type batch struct {
	blocks []block
	cum    []uint64 // cum[i]: pairs in blocks[:i+1]
	total  uint64
	names  map[u128]string
	pairs  map[pairKey]pairInfo
}

// seenPairs is what the earlier batches of one pass over the input
// covered, so a pair repeated in a later batch is not visited again.
type seenPairs struct {
	any    []interval            // on every configured port
	byPort map[uint16][]interval // on one port only
	n      int                   // intervals held
	max    int
	full   bool // a batch was not remembered: n would pass max
	warned bool
}

// remember adds a batch's portless intervals and per-port intervals (all
// sorted and merged), unless that would pass max.
func (sp *seenPairs) remember(portless []interval, byPort map[uint16][]interval) {
	if sp.full {
		return
	}
	any := unionIntervals(sp.any, portless)
	n := sp.n - len(sp.any) + len(any)
	ported := make(map[uint16][]interval, len(byPort))
	for p, ivs := range byPort {
		u := unionIntervals(sp.byPort[p], ivs)
		n += len(u) - len(sp.byPort[p])
		ported[p] = u
	}
	if n > sp.max {
		sp.full = true
		return
	}
	sp.any, sp.n = any, n
	for p, u := range ported {
		sp.byPort[p] = u
	}
}

// finish merges a batch, removes exclusions, duplicates and pairs covered
// by earlier batches (seen, which it then extends), and lays it out as
// blocks:
//   - the portless intervals on every configured port without port-specific
//     exclusions, as one block;
//   - the portless intervals minus that port's exclusions, for each
//     configured port that has some;
//   - for each port named explicitly, its intervals minus exclusions minus
//     what the portless block already covers on that port.
func (s *Set) finish(bb *builder, seen *seenPairs) (*batch, error) {
	portless := mergeIntervals(bb.any)
	a := s.dropBlocked(subtractIntervals(portless, s.excl.any))
	a = subtractIntervals(a, seen.any)
	b := &batch{names: bb.names, pairs: bb.pairs}
	var clean []uint16
	for _, p := range s.ports {
		ex, done := s.excl.byPort[p], seen.byPort[p]
		if len(ex) == 0 && len(done) == 0 {
			clean = append(clean, p)
			continue
		}
		if err := b.addBlock(subtractIntervals(subtractIntervals(a, ex), done), []uint16{p}); err != nil {
			return nil, err
		}
	}
	if err := b.addBlock(a, clean); err != nil {
		return nil, err
	}
	ported := make([]uint16, 0, len(bb.byPort))
	for p := range bb.byPort {
		ported = append(ported, p)
	}
	slices.Sort(ported)
	merged := make(map[uint16][]interval, len(ported))
	for _, p := range ported {
		m := mergeIntervals(bb.byPort[p])
		merged[p] = m
		ivs := s.dropBlocked(subtractIntervals(m, s.excl.any))
		if ex := s.excl.byPort[p]; len(ex) > 0 {
			ivs = subtractIntervals(ivs, ex)
		}
		if s.portSet.has(p) {
			ivs = subtractIntervals(subtractIntervals(ivs, portless), seen.any)
		}
		ivs = subtractIntervals(ivs, seen.byPort[p])
		if err := b.addBlock(ivs, []uint16{p}); err != nil {
			return nil, err
		}
	}
	seen.remember(portless, merged)
	if len(b.names) == 0 {
		b.names = nil
	}
	if len(b.pairs) == 0 {
		b.pairs = nil
	}
	return b, nil
}

func (b *batch) addBlock(ivs []interval, ports []uint16) error {
	if len(ivs) == 0 || len(ports) == 0 {
		return nil
	}
	cum := make([]uint64, len(ivs))
	var n uint64
	for i, iv := range ivs {
		sz, ok := iv.size()
		if ok {
			n += sz
		}
		if !ok || n > maxPairs {
			return &TooLargeError{Count: bigSum(ivs), Unit: "addresses"}
		}
		cum[i] = n
	}
	hi, size := bits.Mul64(n, uint64(len(ports)))
	if hi != 0 || size > maxPairs || b.total+size > maxPairs {
		c := new(big.Int).Mul(new(big.Int).SetUint64(n), big.NewInt(int64(len(ports))))
		c.Add(c, new(big.Int).SetUint64(b.total))
		return &TooLargeError{Count: c, Unit: "(address, port) pairs"}
	}
	b.blocks = append(b.blocks, block{ivs: ivs, cum: cum, ports: ports, size: size})
	b.total += size
	b.cum = append(b.cum, b.total)
	return nil
}

func bigSum(ivs []interval) *big.Int {
	t := new(big.Int)
	for _, iv := range ivs {
		t.Add(t, iv.bigSize())
	}
	return t
}

// target maps index i (< total) to its pair.
func (b *batch) target(i uint64) Target {
	bi := sort.Search(len(b.cum), func(k int) bool { return b.cum[k] > i })
	blk := &b.blocks[bi]
	if bi > 0 {
		i -= b.cum[bi-1]
	}
	np := uint64(len(blk.ports))
	ai, pi := i/np, i%np
	k := sort.Search(len(blk.cum), func(k int) bool { return blk.cum[k] > ai })
	if k > 0 {
		ai -= blk.cum[k-1]
	}
	x := blk.ivs[k].lo.add64(ai)
	t := Target{Addr: x.addr(), Port: blk.ports[pi]}
	if b.pairs != nil {
		if info, ok := b.pairs[pairKey{x, t.Port}]; ok {
			t.Hostname, t.Scheme = info.host, info.scheme
		}
	}
	if t.Hostname == "" && b.names != nil {
		t.Hostname = b.names[x]
	}
	t.TLS = t.Scheme == "https"
	return t
}
