package scanrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/llmfence/llmfence/internal/fingerprint"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/version"
)

// scanner builds the scanner of one run from the session's options.
func (s *Session) scanner(progress func(scan.Stats)) (*scan.Scanner, error) {
	o := s.Options
	prober := s.Prober
	if prober == nil {
		p, err := fingerprint.New(fingerprint.Options{
			Timeout:      o.Timeout,
			TargetBudget: o.TargetBudget,
			UserAgent:    UserAgent(o.Contact),
			Active:       o.Active,
			Logger:       s.Logger,
		})
		if err != nil {
			return nil, err
		}
		prober = p
	}
	ann := s.Annotator
	if ann == nil {
		j, err := risk.NewJudge()
		if err != nil {
			return nil, err
		}
		ann = j
	}
	return scan.New(scan.Options{
		Rate:         o.Rate,
		Concurrency:  o.Concurrency,
		Fingerprints: o.Fingerprints,
		DialTimeout:  o.Timeout,
		Retries:      o.Retries,
		KeepHTTP:     o.KeepHTTP,
		Progress:     progress,
		Logger:       s.Logger,
		Dial:         s.Dial,
	}, prober, ann)
}

// UserAgent is the User-Agent of scans: "llmfence/<version>", with
// " (+<contact>)" when a contact is given.
func UserAgent(contact string) string {
	ua := "llmfence/" + version.String()
	if contact != "" {
		ua += " (+" + contact + ")"
	}
	return ua
}

// saver writes services in batches; see the package doc.
type saver struct {
	st      store.Store
	runID   string
	batch   []service.Service
	size    int
	retry   time.Duration
	saved   int
	onRetry func(err error, wait time.Duration)
}

// flush saves the batch. ctx only bounds the retries' waiting; the writes
// themselves use a context detached from the caller's cancellation, so a
// Ctrl-C never loses an acknowledged service.
func (sv *saver) flush(ctx context.Context) error {
	if len(sv.batch) == 0 {
		return nil
	}
	deadline := time.Now().Add(sv.retry)
	wait := 250 * time.Millisecond
	for {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := sv.st.SaveServices(wctx, sv.runID, sv.batch)
		cancel()
		if err == nil {
			sv.saved += len(sv.batch)
			sv.batch = sv.batch[:0]
			return nil
		}
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrBadInput) || time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("saving %d services of run %s: %w", len(sv.batch), sv.runID, err)
		}
		if sv.onRetry != nil {
			sv.onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			// Interrupted while the store is away: keep trying, within
			// the retry window, without the caller's context.
			<-t.C
		}
		wait = min(wait*2, 10*time.Second)
	}
}

// scanInto scans w, saving into runID. beat (may be nil) is the heartbeat.
func (s *Session) scanInto(ctx context.Context, runID string, w scan.Walker, beat func(context.Context, scan.Stats) error) (Summary, error) {
	var sum Summary
	sum.Worst = service.SeverityNone
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var mu sync.Mutex // guards last
	var last scan.Stats
	progress := func(st scan.Stats) {
		mu.Lock()
		last = st
		mu.Unlock()
		if s.Progress != nil {
			s.Progress(st)
		}
	}
	scanner, err := s.scanner(progress)
	if err != nil {
		return sum, err
	}
	sv := &saver{st: s.Store, runID: runID, size: s.Options.SaveBatch, retry: s.Options.SaveRetryFor,
		onRetry: func(err error, wait time.Duration) {
			s.log().Warn("the store refused a batch of results; retrying", "run", runID, "in", wait, "err", err)
		}}

	// Heartbeat: a stale run is ended by whoever looks (MarkStaleRuns);
	// when that happened to this run, stop.
	hbDone := make(chan struct{})
	var hbWG sync.WaitGroup
	if beat != nil {
		hbWG.Add(1)
		go func() {
			defer hbWG.Done()
			t := time.NewTicker(s.Options.Heartbeat)
			defer t.Stop()
			for {
				select {
				case <-hbDone:
					return
				case <-t.C:
				}
				mu.Lock()
				st := last
				mu.Unlock()
				hctx, hcancel := context.WithTimeout(ctx, 10*time.Second)
				err := beat(hctx, st)
				hcancel()
				switch {
				case errors.Is(err, store.ErrRunEnded):
					cancel(ErrMarkedInterrupted)
					return
				case err != nil && ctx.Err() == nil:
					s.log().Warn("could not record the run's heartbeat", "run", runID, "err", err)
				}
			}
		}()
	}

	emit := func(svc *service.Service) error {
		if svc.Risk.Rank() > sum.Worst.Rank() {
			sum.Worst = svc.Risk
		}
		if s.OnService != nil {
			if err := s.OnService(svc); err != nil {
				return err
			}
		}
		sv.batch = append(sv.batch, *svc)
		if len(sv.batch) >= sv.size {
			return sv.flush(ctx)
		}
		return nil
	}
	stats, scanErr := scanner.Run(ctx, w, emit)
	close(hbDone)
	hbWG.Wait()
	sum.Stats = stats
	if err := sv.flush(ctx); err != nil && scanErr == nil {
		scanErr = err
	} else if err != nil {
		s.log().Error("results could not be saved", "run", runID, "err", err)
	}
	sum.Saved = sv.saved
	if s.Options.FailOn != "" && sum.Worst.Rank() >= s.Options.FailOn.Rank() {
		sum.FailOnTripped = true
	}
	if scanErr != nil && ctx.Err() != nil {
		cause := context.Cause(ctx)
		if cause == context.Canceled { // plain cancellation: no reason known
			cause = nil
		}
		scanErr = &InterruptedError{RunID: runID, Saved: sv.saved, Cause: cause}
	}
	return sum, scanErr
}
