package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/version"
)

// inspectFlags are the knobs of `llmfence inspect`.
type inspectFlags struct {
	format      string
	failOn      string
	ollamaStore string
	bom         string
	workers     int
	follow      bool
	maxFileSize int64
	maxDepth    int
}

func newInspectCmd(e *env) *cobra.Command {
	var f inspectFlags
	cmd := &cobra.Command{
		Use:   "inspect PATH... | --ollama-store DIR",
		Short: "Check model files before anything loads them",
		Long: `inspect tells you, before anything loads a model file, whether it is safe,
what it is, and whether it is what it claims to be. Nothing is loaded or
executed, and no inspected file is modified.

Every file is hashed (SHA-256) and its format decided from its bytes, never
from its name: GGUF, safetensors, pickle (protocols 0-5), PyTorch zip and
legacy tar checkpoints, NumPy .npy/.npz, Keras .keras, ONNX, zip, tar, 7z and
gzip/zlib/xz/lzma/bzip2 streams (joblib). Directories are walked, archives
are opened (nested ones too, to a depth limit) and every member is checked.

What is checked:
  pickle        every imported callable, through the memo and past broken
                streams: allow-listed checkpoint imports are clean, code
                execution gadgets (os, subprocess, eval, runpy, ...) malicious,
                anything else suspicious
  GGUF          header, metadata and tensor bounds (the llama.cpp parser
                CVEs), lineage (abliterated/uncensored), and the Jinja chat
                template: sandbox escapes, URLs, hidden instructions,
                conditionals on message content
  safetensors   header JSON, dtypes, shapes, offsets, unused bytes
  containers    zip tricks (duplicate names, local/central mismatches, CRC,
                prepended or appended data, traversal), bombs, 7z-packed
                checkpoints, object arrays in .npy
  everywhere    a file name whose extension disagrees with the content
  --ollama-store
                every blob a manifest references is hashed against its digest
                (tampered: malicious; missing: invalid), unreferenced blobs
                are listed, and each model's system prompt, lineage and
                template are rated by the same rules as 'llmfence scan'

Verdicts: clean, not-inspected (missing, unreadable, too large or in no
format llmfence recognises: never reported clean), suspicious (a human should
look), invalid (not a well-formed file of its format), malicious (it would run
code or is built to attack).

FIFOs, sockets and devices named on the command line are refused without
being opened.

Exit status:
  0  nothing at or above --fail-on
  1  a finding at or above --fail-on (default high), or a file that runs
     code when loaded (malicious, or an unvetted call), whatever --fail-on
  2  something could not be read (and nothing reached --fail-on), or a
     usage error; the reason is on standard error
  130, 143  interrupted by SIGINT or SIGTERM (results so far are written)`,
		Example: `  llmfence inspect model.gguf pytorch_model.bin ./checkpoints/
  llmfence inspect --format json ./models > verdicts.jsonl
  llmfence inspect --fail-on medium ./downloads      # stricter CI gate
  llmfence inspect --ollama-store ~/.ollama/models
  llmfence inspect ./model-dir --bom model.cdx.json   # CycloneDX ML-BOM`,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd, e, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.format, "format", "f", "table", "output format: table, or json (JSON Lines, one object per file)")
	fl.StringVar(&f.failOn, "fail-on", "high", "exit with status 1 when a finding is at least this severe (none, info, low, medium, high, critical)")
	fl.StringVar(&f.ollamaStore, "ollama-store", "", "verify the Ollama model store in `DIR` (usually ~/.ollama/models)")
	fl.StringVar(&f.bom, "bom", "", "also write a CycloneDX 1.6 JSON ML-BOM of the inspected files to `FILE`")
	fl.IntVar(&f.workers, "workers", 0, "files inspected in parallel (default: number of CPUs)")
	fl.BoolVar(&f.follow, "follow-symlinks", false, "inspect link targets outside the named directories instead of reporting them")
	fl.Int64Var(&f.maxFileSize, "max-file-size", 0, "hash but do not parse files larger than this many bytes (0 = no limit)")
	fl.IntVar(&f.maxDepth, "max-depth", 4, "deepest archive nesting opened")
	return cmd
}

// usageError is a *cli.UsageError (exit status 2); the message names the
// flag.
func usageError(format string, a ...any) error {
	return &cli.UsageError{Err: fmt.Errorf(format, a...)}
}

func runInspect(cmd *cobra.Command, e *env, f *inspectFlags, args []string) error {
	failOn, err := checkInspectFlags(f, args)
	if err != nil {
		return err
	}
	opts := inspect.Options{
		Workers: f.workers, FailOn: failOn, MaxFileSize: f.maxFileSize,
		MaxDepth: f.maxDepth, FollowSymlinks: f.follow, Logger: e.log,
	}
	in, err := inspect.New(opts)
	if err != nil {
		return err
	}
	out := report.NewInspectWriterIn(e.stdout, f.format == "json", e.text)
	var all []*inspect.Result
	emit := func(r *inspect.Result) error {
		if f.bom != "" {
			all = append(all, r)
		}
		if r.Error != "" {
			fmt.Fprintln(e.stderr, report.CannotInspect(e.text, r.Path, r.Error))
		}
		return out.Write(r)
	}
	total, err := inspectInputs(cmd, in, f, args, emit)
	if err != nil {
		return err
	}
	if err := out.Summary(total, failOn); err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	if f.bom != "" {
		err := writeFileAtomic(f.bom, func(w *os.File) error {
			return inspect.WriteBOM(w, all, inspect.BOMOptions{ToolVersion: version.String()})
		})
		if err != nil {
			return fmt.Errorf("--bom: %w", err)
		}
	}
	switch {
	case total.Failed > 0:
		return &cli.FindingsError{Err: fmt.Errorf("%s with findings at or above %s", inspectPlural(total.Failed, "file", "files"), failOn)}
	case total.Errors > 0:
		return fmt.Errorf("%s could not be inspected", inspectPlural(total.Errors, "file", "files"))
	}
	return nil
}

// checkInspectFlags refuses bad usage before anything is read and returns
// the --fail-on threshold.
func checkInspectFlags(f *inspectFlags, args []string) (service.Severity, error) {
	if len(args) == 0 && f.ollamaStore == "" {
		return "", usageError("inspect: name files or directories, or --ollama-store DIR (see llmfence inspect --help)")
	}
	if f.format != "table" && f.format != "json" {
		return "", usageError("--format %q: want table or json", f.format)
	}
	failOn, ok := service.ParseSeverity(f.failOn)
	if !ok {
		return "", usageError("--fail-on %q: want none, info, low, medium, high or critical", f.failOn)
	}
	if f.workers < 0 || f.maxDepth < 1 || f.maxFileSize < 0 {
		return "", usageError("--workers, --max-file-size must not be negative and --max-depth must be at least 1")
	}
	if f.bom != "" {
		if err := checkWritable(f.bom); err != nil {
			return "", usageError("--bom: %v", err)
		}
	}
	return failOn, nil
}

// inspectInputs inspects the named files, then the --ollama-store, and
// returns their summaries merged.
func inspectInputs(cmd *cobra.Command, in *inspect.Inspector, f *inspectFlags, args []string, emit func(*inspect.Result) error) (inspect.Summary, error) {
	ctx := cmd.Context()
	var total inspect.Summary
	if len(args) > 0 {
		s, err := in.Inspect(ctx, args, emit)
		total.Merge(s)
		if err != nil {
			return total, fmt.Errorf("inspect: %w", err)
		}
	}
	if f.ollamaStore != "" {
		judge, err := newJudge()
		if err != nil {
			return total, err
		}
		s, err := in.InspectOllamaStore(ctx, f.ollamaStore, judge, emit)
		total.Merge(s)
		if err != nil {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			return total, fmt.Errorf("--ollama-store: %w", err)
		}
	}
	return total, nil
}

func inspectPlural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
