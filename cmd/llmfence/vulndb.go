package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/report"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/vulndb"
)

// openVulnDB returns the embedded vulnerability data refreshed by what
// `llmfence vulndb import` saved ($LLMFENCE_VULNDB or the per-user data
// directory), and the file it looked at.
func openVulnDB() (*vulndb.DB, string, error) { return vulndb.OpenDefault() }

// newJudge is the judge every command that rates services or models uses
// (scan, inspect --ollama-store, audit): embedded rules and catalogue,
// vulnerability data refreshed by any import.
func newJudge() (*risk.Judge, error) {
	db, _, err := openVulnDB()
	if err != nil {
		return nil, err
	}
	return risk.NewJudgeWith(db)
}

func newVulnDBCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vulndb",
		Short: "Show or refresh the vulnerability data (OSV records) scans are judged with",
		Long: `The vulnerability data is a set of OSV records (https://ossf.github.io/osv-schema/)
for the products llmfence identifies, embedded in the binary. "vulndb import"
refreshes it offline from OSV exports you download (the Go vulnerability
database's zip, the GitHub advisory database, a directory of OSV JSON files),
keeping only the records for those products; "vulndb list" shows what is in
use and how current it is. Imported data is kept in $LLMFENCE_VULNDB, or
vulndb.json in llmfence's per-user data directory, and is read by every scan.`,
	}
	cmd.AddCommand(newVulnDBImportCmd(e), newVulnDBListCmd(e), newVulnDBExportCmd(e))
	return cmd
}

func newVulnDBImportCmd(e *env) *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "import [--replace] FILE|DIR...",
		Short: "Refresh the vulnerability data from OSV JSON exports (files, directories, zip archives)",
		Example: `  llmfence vulndb import ~/Downloads/vulndb.zip
  llmfence vulndb import ./advisory-database/advisories/github-reviewed
  llmfence vulndb import --replace ./osv-records/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := vulndb.DefaultPath()
			if err != nil {
				return err
			}
			products, err := vulndb.EmbeddedProducts()
			if err != nil {
				return err
			}
			in, err := vulndb.Import(cmd.Context(), products, vulndb.DefaultLimits, args...)
			if err != nil {
				return err
			}
			for _, s := range in.Sources {
				fmt.Fprintf(e.stdout, "%s: %d OSV records read, %d for llmfence products, %d files skipped; newest record %s\n",
					s.Path, s.Read, s.Kept, s.Skipped, report.DateOf(s.Date))
				for _, msg := range s.Errors {
					e.log.Warn("skipped", "reason", msg)
				}
			}
			info, err := vulndb.Save(path, in, replace, time.Now())
			if err != nil {
				return err
			}
			if _, err := vulndb.Open(path); err != nil {
				return fmt.Errorf("the saved data does not load: %w", err)
			}
			fmt.Fprintf(e.stdout, "saved %d records to %s (data of %s)\n", info.Records, path, report.DateOf(info.Date))
			return nil
		},
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "drop previously imported records instead of merging with them")
	return cmd
}

func newVulnDBListCmd(e *env) *cobra.Command {
	var format, product string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the vulnerability data in use and its date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			db, path, err := openVulnDB()
			if err != nil {
				return err
			}
			var vulns []vulndb.Vuln
			for _, v := range db.Vulns() {
				if product == "" || strings.EqualFold(v.Product, product) {
					vulns = append(vulns, v)
				}
			}
			sort.SliceStable(vulns, func(i, j int) bool {
				if vulns[i].Product != vulns[j].Product {
					return vulns[i].Product < vulns[j].Product
				}
				return vulns[i].ID < vulns[j].ID
			})
			if format == "json" {
				return report.WriteJSONL(e.stdout, report.VulnRecords(vulns, db.Date()))
			}
			imp, hasImport := db.ImportedInfo()
			return report.VulnTable(e.stdout, report.VulnData{Date: db.Date(), Embedded: db.EmbeddedInfo(),
				Imported: imp, HasImport: hasImport, Path: path}, vulns)
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().StringVar(&product, "product", "", "only this product (ollama, vllm, llamacpp, ...)")
	return cmd
}

func newVulnDBExportCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "export DIR",
		Short: "Write the vulnerability data in use as OSV JSON files, one per record",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, _, err := openVulnDB()
			if err != nil {
				return err
			}
			n, err := vulndb.Export(db, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %d OSV records to %s (data as of %s)\n", n, args[0], report.DateOf(db.Date()))
			return nil
		},
	}
}
