package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/cli"
	apikeys "github.com/llmfence/llmfence/internal/guard/keys"
	"github.com/llmfence/llmfence/internal/guard/route"
	"github.com/llmfence/llmfence/internal/report"
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

// keysCreateFlags are the knobs of `llmfence keys create`.
type keysCreateFlags struct {
	models     []string
	rpm        int
	tpm        int
	concurrent int
	daily      int64
	monthly    int64
	expires    string
	admin      bool
	allowCloud bool
	createDir  bool
}

func newKeysCreateCmd(e *env) *cobra.Command {
	var kf keysCreateFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API key and print it (once) on standard output",
		Example: `  llmfence keys create alice --models 'llama3*,qwen*' --rpm 60 --tpm 40000 --daily-tokens 2000000 --expires 720h
  llmfence keys create ops --admin --models '*' --expires 30d`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeysCreate(cmd, e, &kf, args)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&kf.models, "models", nil, "model `GLOBS` the key may use, comma-separated ('llama3*,qwen*'; '*' = all)")
	f.IntVar(&kf.rpm, "rpm", 0, "requests per minute (0 = default tier, -1 = unlimited)")
	f.IntVar(&kf.tpm, "tpm", 0, "tokens per minute (0 = default tier, -1 = unlimited)")
	f.IntVar(&kf.concurrent, "concurrent", 0, "requests in flight at once (0 = default tier, -1 = unlimited)")
	f.Int64Var(&kf.daily, "daily-tokens", 0, "token budget per UTC day (0 = default tier, -1 = unlimited)")
	f.Int64Var(&kf.monthly, "monthly-tokens", 0, "token budget per UTC month (0 = default tier, -1 = unlimited)")
	f.StringVar(&kf.expires, "expires", "", "the key expires after this `DURATION` (e.g. 720h, 30d; default: never)")
	f.BoolVar(&kf.admin, "admin", false, "allow model management (pull, push, create, copy, delete)")
	f.BoolVar(&kf.allowCloud, "allow-cloud", false, "allow Ollama cloud models (*:cloud, *-cloud), billed to the server owner's ollama.com account")
	f.BoolVar(&kf.createDir, "create-dir", false, "create the directory of a --db file that does not exist yet")
	return cmd
}

// runKeysCreate creates one API key and prints it once.
func runKeysCreate(cmd *cobra.Command, e *env, kf *keysCreateFlags, args []string) error {
	name := args[0]
	if err := apikeys.ValidateName(name); err != nil {
		return badKeysArg(err)
	}
	var globs []string
	for _, g := range kf.models {
		if g = strings.TrimSpace(g); g != "" {
			globs = append(globs, g)
		}
	}
	if err := route.ValidateGlobs(globs); err != nil {
		return badKeysArg(fmt.Errorf("--models: %w", err))
	}
	spec := apikeys.Spec{Name: name, Models: globs, Admin: kf.admin, AllowCloud: kf.allowCloud,
		Limits: apikeys.Limits{RPM: kf.rpm, TPM: kf.tpm, Concurrent: kf.concurrent, Daily: kf.daily, Monthly: kf.monthly}}
	if kf.expires != "" {
		d, err := parseLongDuration(kf.expires)
		if err != nil || d <= 0 {
			return badKeysArg(fmt.Errorf("--expires %q: want a positive duration such as 720h or 30d", kf.expires))
		}
		spec.Expires = time.Now().Add(d)
	}
	st, err := openGuardStore(cmd.Context(), e, storeUse{createDir: kf.createDir})
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
	report.DescribeKey(e.stderr, k, report.ListOptions{})
	if len(k.Models) == 0 {
		fmt.Fprintln(e.stderr, "Note: no --models given, so requests naming any model will be refused (use --models '*' to allow all).")
	}
	return nil
}

// badKeysArg marks a bad command line (exit status 2).
func badKeysArg(err error) error { return cli.Usage("", err) }

// parseLongDuration is cli.ParseDuration, the one duration syntax (Go
// durations plus d and w: "30d", "1w").
func parseLongDuration(s string) (time.Duration, error) { return cli.ParseDuration(s) }

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
			if format == "json" {
				return report.WriteJSONL(e.stdout, report.KeyRecords(list, report.ListOptions{}))
			}
			if len(list) == 0 {
				fmt.Fprintln(e.stderr, "No API keys yet; create one with `llmfence keys create NAME --models '*'`.")
				return nil
			}
			return report.KeysTable(e.stdout, list, report.ListOptions{})
		},
	}
	formatFlag(cmd, &format)
	return cmd
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
			f := store.UsageFilter{Key: strings.TrimSpace(key)}
			if since > 0 {
				f.Since = time.Now().Add(-since).UTC().Truncate(time.Second)
			}
			st, err := openGuardStore(cmd.Context(), e, storeUse{mustExist: true})
			if err != nil {
				return err
			}
			defer st.Close()
			sums, err := st.SummarizeUsage(cmd.Context(), f)
			if err != nil {
				return err
			}
			if f.Key != "" && len(sums) == 0 {
				if err := knownKey(cmd.Context(), st, f.Key); err != nil {
					return err
				}
			}
			if format == "json" {
				return report.WriteJSONL(e.stdout, sums)
			}
			return report.UsageTable(e.stdout, sums)
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
