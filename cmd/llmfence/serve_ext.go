package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/llmfence/llmfence/internal/console"
	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/store"
)

// serveExtFlags are serve's optional parts: owners, alerts, schedules,
// disclosure, single sign-on.
type serveExtFlags struct{}

func (f *serveExtFlags) register(cmd *cobra.Command) {}

// serveExt is what the optional parts hand to the engine and console.
type serveExt struct {
	console console.Config
}

func (f *serveExtFlags) build(ctx context.Context, e *env, st store.ServerStore, cfg *jobs.Config) (*serveExt, error) {
	return &serveExt{}, nil
}

func (x *serveExt) attach(eng *jobs.Engine) {}
