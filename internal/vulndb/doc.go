// Package vulndb provides llmfence's vulnerability data: OSV records
// (https://ossf.github.io/osv-schema/) for the products the scanner
// identifies, evaluated with OSV range semantics, and the offline refresh of
// that data from OSV exports a user downloads.
//
// # Data
//
// The embedded records live in osv/, one OSV JSON file per vulnerability,
// each checked against its upstream record (CVE record, GitHub or PyPA
// advisory, Go vulnerability database) before it was added. llmfence's own
// annotations (the severity it reports, the score and who assigned it, where
// the entry was checked, caveats) sit in the record's top-level
// database_specific.llmfence object, which the OSV schema leaves to each
// database, so every record stays a valid OSV record and exports losslessly.
// products.yaml maps OSV packages (ecosystem and name) to llmfence product
// IDs and names the version ordering each uses.
//
// # Ranges
//
// A version is affected by a range when, walking the range's events in
// version order, the last event at or below it is an introduced event
// (fixed: not affected from that version on; last_affected: not affected
// above it); when the range has limit events the version must also lie
// below one of them. SEMVER ranges use Semantic Versioning order; ECOSYSTEM
// ranges use the package's order from products.yaml (PEP 440 for PyPI,
// semver for Go, build numbers such as b4500 for llama.cpp). GIT ranges name
// commits and cannot be compared with a reported version: they never claim
// one. A range without fixed or last_affected is open: every version from
// its introduction on is affected and no fix exists yet.
//
// # Import
//
// Import reads OSV JSON from a file, a directory tree or a zip archive (the
// form the Go vulnerability database and GitHub advisory exports take),
// keeps the records that name a package in products.yaml, and returns them
// with the export's date. Every size and count is bounded (Limits); a record
// that does not parse is skipped and counted, never trusted. Save and Open
// keep the result in one JSON file (by default vulndb.json in llmfence's
// per-user data directory), replaced atomically.
package vulndb
