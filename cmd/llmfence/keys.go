package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	apikeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/store"
)

// The keys and usage commands manage the API keys of `llmfence guard` and
// report what the keys used. Both read and write the store (--db).

func newKeysCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, list, rotate and revoke API keys for llmfence guard",
		Long: `Manage the API keys the guard accepts. A new key is printed once, alone on
standard output, and only its SHA-256 hash is stored: keep it when it is shown.

Keys are sent as "Authorization: Bearer <key>" or "X-API-Key: <key>".`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newKeysCreateCmd(e), newKeysListCmd(e), newKeysRevokeCmd(e), newKeysRotateCmd(e))
	return cmd
}

func newKeysCreateCmd(e *env) *cobra.Command {
	var (
		models               []string
		rpm, tpm, concurrent int
		daily, monthly       int64
		expires              string
		admin, allowCloud    bool
		createDir            bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API key and print it (once) on standard output",
		Example: `  llmfence keys create alice --models 'llama3*,qwen*' --rpm 60 --tpm 40000 --daily-tokens 2000000 --expires 720h
  llmfence keys create ops --admin --models '*' --expires 30d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := apikeys.ValidateName(name); err != nil {
				return badKeysArg(err)
			}
			var globs []string
			for _, g := range models {
				if g = strings.TrimSpace(g); g != "" {
					globs = append(globs, g)
				}
			}
			if err := route.ValidateGlobs(globs); err != nil {
				return badKeysArg(fmt.Errorf("--models: %w", err))
			}
			spec := apikeys.Spec{Name: name, Models: globs, Admin: admin, AllowCloud: allowCloud,
				Limits: apikeys.Limits{RPM: rpm, TPM: tpm, Concurrent: concurrent, Daily: daily, Monthly: monthly}}
			if expires != "" {
				d, err := parseLongDuration(expires)
				if err != nil || d <= 0 {
					return badKeysArg(fmt.Errorf("--expires %q: want a positive duration such as 720h or 30d", expires))
				}
				spec.Expires = time.Now().Add(d)
			}
			st, err := openGuardStore(cmd.Context(), e, storeUse{createDir: createDir})
			if err != nil {
				return err
			}
			defer st.Close()
			key, k, err := apikeys.NewManager(st, apikeys.Options{Logger: e.log}).Create(cmd.Context(), spec)
			if err != nil {
				return err
			}
			// The key alone on stdout, so `KEY=$(llmfence keys create x)` works.
			if _, err := fmt.Fprintln(e.stdout, key); err != nil {
				return fmt.Errorf("print the new key: %w", err)
			}
			fmt.Fprintf(e.stderr, "Created API key %q (id %s). It is shown only this once: store it now.\n", k.Name, k.ID)
			describeKey(e.stderr, k)
			if len(k.Models) == 0 {
				fmt.Fprintln(e.stderr, "Note: no --models given, so requests naming any model will be refused (use --models '*' to allow all).")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&models, "models", nil, "model `GLOBS` the key may use, comma-separated ('llama3*,qwen*'; '*' = all)")
	f.IntVar(&rpm, "rpm", 0, "requests per minute (0 = default tier, -1 = unlimited)")
	f.IntVar(&tpm, "tpm", 0, "tokens per minute (0 = default tier, -1 = unlimited)")
	f.IntVar(&concurrent, "concurrent", 0, "requests in flight at once (0 = default tier, -1 = unlimited)")
	f.Int64Var(&daily, "daily-tokens", 0, "token budget per UTC day (0 = default tier, -1 = unlimited)")
	f.Int64Var(&monthly, "monthly-tokens", 0, "token budget per UTC month (0 = default tier, -1 = unlimited)")
	f.StringVar(&expires, "expires", "", "the key expires after this `DURATION` (e.g. 720h, 30d; default: never)")
	f.BoolVar(&admin, "admin", false, "allow model management (pull, push, create, copy, delete)")
	f.BoolVar(&allowCloud, "allow-cloud", false, "allow Ollama cloud models (*:cloud, *-cloud), billed to the server owner's ollama.com account")
	f.BoolVar(&createDir, "create-dir", false, "create the directory of a --db file that does not exist yet")
	return cmd
}

// badKeysArg marks a bad command line (exit status 2).
func badKeysArg(err error) error { return cli.Usage("", err) }

// parseLongDuration is cli.ParseDuration, the one duration syntax (Go
// durations plus d and w: "30d", "1w").
func parseLongDuration(s string) (time.Duration, error) { return cli.ParseDuration(s) }

func describeKey(w io.Writer, k apikeys.Key) {
	exp := "never"
	if !k.Expires.IsZero() {
		exp = k.Expires.Local().Format(time.DateTime)
	}
	fmt.Fprintf(w, "  models: %s\n  limits: %s\n  admin: %t  allow-cloud: %t  expires: %s\n",
		modelsText(k.Models), limitsText(k.Limits), k.Admin, k.AllowCloud, exp)
}

func modelsText(m []string) string {
	if len(m) == 0 {
		return "(none)"
	}
	return strings.Join(m, ",")
}

func limitsText(l apikeys.Limits) string {
	var parts []string
	add := func(name string, v int64) {
		switch {
		case v > 0:
			parts = append(parts, fmt.Sprintf("%s=%d", name, v))
		case v < 0:
			parts = append(parts, name+"=unlimited")
		}
	}
	add("rpm", int64(l.RPM))
	add("tpm", int64(l.TPM))
	add("concurrent", int64(l.Concurrent))
	add("daily", l.Daily)
	add("monthly", l.Monthly)
	if len(parts) == 0 {
		return "default tier"
	}
	return strings.Join(parts, " ")
}

// keyView is a key as `keys list --format json` prints it.
type keyView struct {
	apikeys.Key
	Status string `json:"status"`
}

func newKeysListCmd(e *env) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never their secrets), revoked ones included",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return badKeysArg(err)
			}
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			list, err := apikeys.NewManager(st, apikeys.Options{Logger: e.log}).List(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			if format == "json" {
				views := make([]keyView, len(list))
				for i, k := range list {
					views[i] = keyView{Key: k, Status: k.Status(now)}
				}
				return writeJSON(e.stdout, views)
			}
			if len(list) == 0 {
				fmt.Fprintln(e.stderr, "No API keys yet; create one with `llmfence keys create NAME --models '*'`.")
				return nil
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tSTATUS\tCREATED\tEXPIRES\tLAST USED\tADMIN\tCLOUD\tMODELS\tLIMITS")
			for _, k := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Name, k.ID, k.Status(now),
					dateOr(k.Created, "-"), dateOr(k.Expires, "never"), dateOr(k.LastUsed, "never"),
					yesNo(k.Admin), yesNo(k.AllowCloud), clip(modelsText(k.Models), 40), limitsText(k.Limits))
			}
			return tw.Flush()
		},
	}
	formatFlag(cmd, &format)
	return cmd
}

func dateOr(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.Local().Format(time.DateTime)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newKeysRevokeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an API key: the guard refuses it from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			k, err := apikeys.NewManager(st, apikeys.Options{Logger: e.log}).Revoke(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "Revoked API key %q (id %s). A running guard refuses it within %v.\n",
				k.Name, k.ID, apikeys.DefaultCacheTTL)
			return nil
		},
	}
}

func newKeysRotateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate NAME",
		Short: "Replace an API key's secret (same ID and settings) and print the new key once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			key, k, err := apikeys.NewManager(st, apikeys.Options{Logger: e.log}).Rotate(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintln(e.stdout, key); err != nil {
				return fmt.Errorf("print the new key: %w", err)
			}
			fmt.Fprintf(e.stderr, "Rotated API key %q (id %s): the old key stops working (in a running guard within %v). The new one is shown only this once.\n",
				k.Name, k.ID, apikeys.DefaultCacheTTL)
			return nil
		},
	}
}

// usageReport is what `llmfence usage --format json` prints.
type usageReport struct {
	Since time.Time            `json:"since,omitzero"`
	Key   string               `json:"key,omitempty"`
	Keys  []store.UsageSummary `json:"keys"`
	Total usageTotal           `json:"total"`
}

type usageTotal struct {
	Requests         int64 `json:"requests"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	Errors           int64 `json:"errors"`
}

func newUsageCmd(e *env) *cobra.Command {
	var format, key string
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show what each API key used through llmfence guard: requests, tokens, errors",
		Example: `  llmfence usage
  llmfence usage --since 720h --key alice --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return badKeysArg(err)
			}
			if since < 0 {
				return badKeysArg(errors.New("--since must not be negative"))
			}
			rep := usageReport{Key: strings.TrimSpace(key), Keys: []store.UsageSummary{}}
			if since > 0 {
				rep.Since = time.Now().Add(-since).UTC().Truncate(time.Second)
			}
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			sums, err := st.SummarizeUsage(cmd.Context(), store.UsageFilter{Since: rep.Since, Key: rep.Key})
			if err != nil {
				return err
			}
			if rep.Key != "" && len(sums) == 0 {
				if err := knownKey(cmd.Context(), st, rep.Key); err != nil {
					return err
				}
			}
			rep.Keys = append(rep.Keys, sums...)
			for _, s := range sums {
				rep.Total.Requests += s.Requests
				rep.Total.PromptTokens += s.PromptTokens
				rep.Total.CompletionTokens += s.CompletionTokens
				rep.Total.Errors += s.Errors
			}
			if format == "json" {
				return writeJSON(e.stdout, rep)
			}
			tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tID\tREQUESTS\tPROMPT\tCOMPLETION\tTOTAL TOKENS\tERRORS")
			for _, s := range sums {
				name, id := s.KeyName, s.KeyID
				if name == "" && id == "" {
					name, id = "(no key)", "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", name, id, s.Requests, s.PromptTokens,
					s.CompletionTokens, s.PromptTokens+s.CompletionTokens, s.Errors)
			}
			t := rep.Total
			fmt.Fprintf(tw, "TOTAL\t\t%d\t%d\t%d\t%d\t%d\n", t.Requests, t.PromptTokens, t.CompletionTokens,
				t.PromptTokens+t.CompletionTokens, t.Errors)
			return tw.Flush()
		},
	}
	formatFlag(cmd, &format)
	cmd.Flags().Var(cli.NewDuration(&since, 24*time.Hour, cli.NonNegative), "since", "only requests in this last `DURATION` (0 = all time)")
	cmd.Flags().StringVar(&key, "key", "", "only this key (`NAME` or ID)")
	cmd.AddCommand(newUsagePruneCmd(e))
	return cmd
}

// knownKey checks that a key named in a filter exists (by name or ID); an
// unknown one is a usage error, not an empty report.
func knownKey(ctx context.Context, st store.GuardStore, key string) error {
	if _, err := st.GetKeyByName(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, err := st.GetKeyByID(ctx, key); err == nil {
		return nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return badKeysArg(fmt.Errorf("--key %q: no API key has that name or ID, and no usage is recorded for it (see llmfence keys list)", key))
}

func newUsagePruneCmd(e *env) *cobra.Command {
	var olderThan string
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete usage records older than a duration",
		Long: `Delete the usage (audit) records older than --older-than. The guard does this
by itself, hourly, with its configured retention (audit.retention, 2160h by
default); prune is for a shorter retention now, or for a store no guard runs
on.`,
		Example: `  llmfence usage prune --older-than 2160h
  llmfence usage prune --older-than 90d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := parseLongDuration(olderThan)
			if err != nil || d <= 0 {
				return badKeysArg(fmt.Errorf("--older-than %q: want a positive duration such as 2160h or 90d", olderThan))
			}
			before := time.Now().Add(-d)
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.PruneUsage(cmd.Context(), before)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "Deleted %d usage records older than %s.\n", n, before.Local().Format(time.DateTime))
			return nil
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "2160h", "delete usage records older than this `DURATION` (e.g. 2160h, 90d)")
	return cmd
}
