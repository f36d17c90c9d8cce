package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/disclose"
	"github.com/llmfence/llmfence/internal/owners"
	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
)

// discloseFlags are the knobs of `llmfence disclose`.
type discloseFlags struct {
	ownersFile  string
	format      string
	outDir      string
	owner       string
	minSev      string
	from        string
	securityTxt bool
}

func newDiscloseCmd(e *env) *cobra.Command {
	var f discloseFlags
	cmd := &cobra.Command{
		Use:   "disclose RUN",
		Short: "Write notification reports of a scan run, one per owner (Markdown, CSV, JSON)",
		Long: `Write what each owner should be told about a scan run: what is exposed, the
evidence (system prompts redacted to their length and categories), why it
matters and how to fix it. Owners come from --owners (YAML: team, contact,
CIDRs or host names); a service nobody owns gets the contact its own
/.well-known/security.txt gives (RFC 9116), read only from the hosts the run
scanned (--security-txt=false to read nothing).

RUN is a run ID, latest or previous. With -o DIR one file per owner is
written there; otherwise the report goes to standard output.

The Markdown notice follows --lang: in Japanese it reads as a Japanese
CSIRT's notice (件名, 宛先, 概要, 検出内容, 影響, 対応のお願い, 連絡先).
CSV and JSON are the same in every language. --from names whom owners
should answer.`,
		Example: `  llmfence disclose latest --owners owners.yaml
  llmfence disclose latest --owners owners.yaml --lang ja --from csirt@example.org -o reports/
  llmfence disclose 42 --owners owners.yaml --format csv -o reports/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDisclose(cmd, e, &f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ownersFile, "owners", "", "owners `FILE` (YAML)")
	fl.StringVarP(&f.format, "format", "f", "markdown", "markdown, csv or json")
	fl.StringVarP(&f.outDir, "output-dir", "o", "", "write one file per owner into `DIR`")
	fl.StringVar(&f.owner, "owner", "", "only this owner's report")
	fl.StringVar(&f.minSev, "min-risk", "low", "leave out services rated lower")
	fl.BoolVar(&f.securityTxt, "security-txt", true, "read /.well-known/security.txt of services without an owner")
	fl.StringVar(&f.from, "from", "", "whom owners should answer (an address or team), said in the notice's contact section")
	return cmd
}

// runDisclose writes the notification reports of one run.
func runDisclose(cmd *cobra.Command, e *env, f *discloseFlags, args []string) error {
	switch f.format {
	case "markdown", "csv", "json":
	default:
		return badKeysArg(fmt.Errorf("--format %q: want markdown, csv or json", f.format))
	}
	sev, ok := service.ParseSeverity(f.minSev)
	if !ok {
		return badKeysArg(fmt.Errorf("--min-risk %q: want info, low, medium, high or critical", f.minSev))
	}
	om, err := owners.Load(f.ownersFile)
	if err != nil {
		return badKeysArg(fmt.Errorf("--owners: %w", err))
	}
	st, err := openStore(cmd.Context(), e, store.AccessExisting)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := disclose.Build(cmd.Context(), st, args[0], disclose.Options{Owners: om, SecurityTxt: f.securityTxt, MinSeverity: sev,
		UserAgent: scanrun.UserAgent(""), From: f.from})
	if err != nil {
		return err
	}
	if f.owner != "" {
		rep = rep.Only(f.owner)
	}
	if f.outDir == "" {
		return rep.Write(e.stdout, f.format, e.text)
	}
	if err := os.MkdirAll(f.outDir, 0o700); err != nil {
		return fmt.Errorf("-o: %w", err)
	}
	ext := map[string]string{"markdown": ".md", "csv": ".csv", "json": ".json"}[f.format]
	for _, g := range rep.Groups {
		path := filepath.Join(f.outDir, fileName(g.Team)+ext)
		if err := writeFileAtomic(path, func(fh *os.File) error { return rep.Only(g.Team).Write(fh, f.format, e.text) }); err != nil {
			return err
		}
		fmt.Fprintln(e.stderr, e.text.T("cli.disclose.wrote", "team", g.Team, "count", strconv.Itoa(len(g.Services)), "path", path))
	}
	return nil
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func fileName(team string) string {
	n := unsafeName.ReplaceAllString(team, "_")
	if n == "" || n == "." || n == ".." {
		n = "owner"
	}
	return n
}
