// Package archive looks inside the containers model files travel in — zip
// (PyTorch checkpoints, Keras .keras, NumPy .npz), tar (legacy torch.save),
// 7z, NumPy .npy and compressed single streams (gzip, zlib, xz, lzma, bzip2:
// joblib dumps) — and reports container tricks that make scanners and
// loaders see different things.
//
// The container kind is decided by content (magic bytes), never by file
// name. Walk enumerates members and hands each to a callback with a bounded
// reader; nested archives are handled by the caller calling Walk again on a
// member (Options.Depth / MaxDepth bound the recursion).
//
// The zip reader is hand-written on purpose: archive/zip trusts the central
// directory, silently ignores the local headers, and stops at the first
// inconsistency, while the published picklescan bypasses (CVE-2025-1944,
// CVE-2025-1945, CVE-2025-10156) live exactly in the differences between the
// central directory, the local headers, data descriptors and CRCs. Parsing
// both copies ourselves, with every count, length and offset bounded by the
// bytes actually present, lets us report those differences instead of
// tripping over them. Only compress/flate is used, to inflate member data
// under a byte budget.
//
// Tar uses archive/tar (its header sizes are bounded) behind a byte budget;
// 7z uses github.com/bodgit/sevenzip behind a panic guard and budgets.
// Nothing is ever executed and inspected files are never written to.
//
// Findings come from the embedded, versioned catalogue findings.yaml (ID
// prefix ARC-).
package archive
