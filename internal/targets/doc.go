// Package targets turns what the user asks llmfence to scan — addresses,
// CIDRs, ranges, host names, URLs and files of them, minus exclusions — into
// a validated, counted set of (address, port) pairs, and walks that set in a
// seeded random order without ever expanding it.
//
// # Specs
//
// ParseSpec documents the accepted forms. Files hold one or more specs per
// line, separated by white space or commas; blank lines and "#" comments are
// ignored. Exclusions take the same forms; an exclusion with a port removes
// only that port, one without removes the address on every port, and
// exclusions always win, even over explicitly listed targets. Specs without a
// port are crossed with Options.Ports; specs with a port (including URLs,
// whose port defaults to 80 or 443) use only that port.
//
// # Validation before walking
//
// NewSet reads every spec once, parsing, resolving and counting, so a bad
// line anywhere (reported as file:line: "spec": reason) fails before the
// first probe. Files are read again by Walk, batch by batch. Standard input
// ("-") cannot be read twice, so NewSet spools it to a temporary file that
// Close removes; an exclusion list on standard input is read straight into
// memory. When the whole input fits in one batch (the usual case) the batch
// built by NewSet is kept and Walk neither re-reads nor re-resolves.
//
// # Memory
//
// Addresses live in one 128-bit space (IPv4 as IPv4-mapped IPv6) as
// inclusive intervals. A batch of at most Options.BatchSize specs becomes a
// few sorted, merged interval lists — duplicates and overlaps collapse, so
// each pair appears once per batch — and exclusions are subtracted interval
// by interval. A /8 costs one interval, as does a /16. Memory is therefore
// bounded by the batch size and the number of disjoint exclusion intervals
// (all exclusions stay in memory, 32 bytes per disjoint interval), never by
// the number of addresses or the length of an include file. A pair repeated
// in two different batches is visited, and counted, once: the ranges
// earlier batches covered are remembered, merged, and subtracted from later
// batches like exclusions (up to Options.MaxSeen disjoint ranges, 32 MiB by
// default; only an input so scattered that more ranges stay disjoint can
// have a repeat far apart visited twice, and a warning says so).
//
// # Scope guard
//
// Options.Blocked ranges (normally ReservedRanges, the embedded
// reserved_ranges.yaml: multicast, class E and limited broadcast, "this
// network" 0.0.0.0/8, the documentation ranges and a few IPv6 special
// ranges) are left out on every port, after the user's exclusions, and
// Set.Blocked says which of them removed addresses. Loopback, private,
// shared (100.64.0.0/10) and link-local space are not in the table; the
// data file says why for each decision. Set.Ranges lists the set's address
// ranges without sending anything (the dry run).
//
// # Permutation
//
// Each batch is a single index space 0..N-1: blocks of (interval list ×
// port list) laid end to end, an index mapped back to its pair by two binary
// searches. The order is ZMap's: pick a prime p > N and walk the cyclic
// multiplicative group of integers modulo p, x → x·g mod p, from a random
// start with a random generator g. A generator's powers visit every element
// of 1..p-1 exactly once, so element e, read as index e-1, visits every index
// once; the few elements past N are skipped. p is the smallest safe prime
// (p = 2q+1, q prime) above N, found with a deterministic Miller–Rabin test,
// so p-1 = 2q and g generates the group exactly when g² ≠ 1 and g^q ≠ 1
// (mod p). The walk's state is four integers. g and the start come from a
// PCG generator seeded with Options.Seed and the batch number: the same seed
// and input give the same order. N may be at most 2^48 (every IPv4 address on
// every port); larger sets, such as an IPv6 /64, are refused with a
// TooLargeError.
package targets
