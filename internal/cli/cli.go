package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// Exit statuses; see the package doc.
const (
	ExitOK       = 0
	ExitFindings = 1
	ExitError    = 2
	ExitSIGINT   = 130
	ExitSIGTERM  = 143
)

// UsageError is a request that cannot run as given: a bad flag value, a
// missing or extra argument, a target that does not parse. Flag names the
// flag at fault ("--since"), "" when the error is about arguments.
type UsageError struct {
	Flag string
	Err  error
}

func (e *UsageError) Error() string {
	msg := e.Err.Error()
	if e.Flag != "" && !strings.HasPrefix(msg, e.Flag) {
		return e.Flag + ": " + msg
	}
	return msg
}

func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError about flag ("" for arguments).
func Usagef(flag, format string, args ...any) error {
	return &UsageError{Flag: flag, Err: fmt.Errorf(format, args...)}
}

// Usage marks err as a usage error about flag ("" for arguments); nil
// stays nil and an error that already is a usage error is kept.
func Usage(flag string, err error) error {
	if err == nil || IsUsage(err) {
		return err
	}
	return &UsageError{Flag: flag, Err: err}
}

// IsUsage reports whether err is, or wraps, a *UsageError.
func IsUsage(err error) bool {
	var ue *UsageError
	return errors.As(err, &ue)
}

// FindingsError says the command completed and found something at or
// above its --fail-on threshold: exit status 1.
type FindingsError struct{ Err error }

func (e *FindingsError) Error() string { return e.Err.Error() }
func (e *FindingsError) Unwrap() error { return e.Err }

// Findingsf returns a *FindingsError.
func Findingsf(format string, args ...any) error {
	return &FindingsError{Err: fmt.Errorf(format, args...)}
}

// ExitCode maps the error a command returned to the process exit status;
// ctx is the command's context, whose cause tells SIGINT from SIGTERM
// (signal.NotifyContext records the signal as the cause).
func ExitCode(ctx context.Context, err error) int {
	if err == nil {
		return ExitOK
	}
	var fe *FindingsError
	if errors.As(err, &fe) {
		return ExitFindings
	}
	if errors.Is(err, context.Canceled) {
		if IsSIGTERM(ctx) {
			return ExitSIGTERM
		}
		return ExitSIGINT
	}
	return ExitError
}

// IsSIGTERM reports whether ctx was cancelled by SIGTERM.
func IsSIGTERM(ctx context.Context) bool {
	c := context.Cause(ctx)
	return c != nil && c.Error() == syscall.SIGTERM.String()+" signal received"
}

// Scheme is the exit-status scheme in words, for --help and the README.
const Scheme = `Exit status: 0 done, nothing at or above --fail-on; 1 findings at or above
--fail-on (scan, inspect, datascan, probe, audit); 2 bad usage, unreadable
input, or an error that prevented a complete answer; 130 interrupted by
Ctrl-C (SIGINT), 143 by SIGTERM. Servers (guard, lab, serve, worker) exit 0
after a graceful shutdown.`

// Interrupted marks err as the end of a command stopped by a signal, for an
// error that does not already wrap context.Canceled; ExitCode then maps it
// to 130 or 143. The message stays err's.
func Interrupted(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	return &interrupted{err}
}

type interrupted struct{ err error }

func (e *interrupted) Error() string   { return e.err.Error() }
func (e *interrupted) Unwrap() []error { return []error{e.err, context.Canceled} }
