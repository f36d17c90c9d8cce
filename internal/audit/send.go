package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Limits of --send.
const (
	sendTimeout     = 30 * time.Second
	maxSpoolFiles   = 100      // kept results resent per run
	maxSpoolPayload = 64 << 20 // a kept result larger than this is left alone
	maxErrorBody    = 4 << 10
)

// Sender posts audit results (JSON Lines) to `llmfence serve`, with a
// bearer key. A result that cannot be delivered is kept in SpoolDir and
// sent first on the next run.
type Sender struct {
	URL       string
	Key       string
	SpoolDir  string
	UserAgent string
	Client    *http.Client // [30 s timeout, redirects not followed]
	Now       func() time.Time
}

// CheckSendURL refuses a target that would carry the key in clear text
// across the network: https, or http to loopback only.
func CheckSendURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if strings.EqualFold(h, "localhost") {
			return nil
		}
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			return nil
		}
		return fmt.Errorf("%s: the key would cross the network in clear text; use https (plain http only to loopback)", raw)
	}
	return fmt.Errorf("%q: want an https URL", raw)
}

func (s *Sender) client() *http.Client {
	if s.Client != nil {
		return s.Client
	}
	return &http.Client{
		Timeout:       sendTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// post delivers one payload.
func (s *Sender) post(ctx context.Context, payload []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+s.Key)
	if s.UserAgent != "" {
		req.Header.Set("User-Agent", s.UserAgent)
	}
	resp, err := s.client().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode/100 != 2 {
		msg := strings.Join(strings.Fields(string(body)), " ")
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		return fmt.Errorf("%s answered %s %s", s.URL, resp.Status, msg)
	}
	return nil
}

// Send delivers payload; when that fails the payload is kept in the spool
// directory and the error says where.
func (s *Sender) Send(ctx context.Context, payload []byte, host string) error {
	err := s.post(ctx, payload)
	if err == nil {
		return nil
	}
	kept, kerr := s.keep(payload, host)
	if kerr != nil {
		return fmt.Errorf("sending the result: %w; keeping it failed too: %v", err, kerr)
	}
	return &NotSentError{Err: err, Kept: kept}
}

// NotSentError is a result that was kept locally instead of delivered.
type NotSentError struct {
	Err  error
	Kept string
}

func (e *NotSentError) Error() string {
	return fmt.Sprintf("sending the result: %v; kept it in %s (sent on the next run with --send)", e.Err, e.Kept)
}

func (e *NotSentError) Unwrap() error { return e.Err }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// keep writes payload to the spool directory (0700, file 0600).
func (s *Sender) keep(payload []byte, host string) (string, error) {
	if s.SpoolDir == "" {
		return "", errors.New("no spool directory")
	}
	if err := os.MkdirAll(s.SpoolDir, 0o700); err != nil {
		return "", err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	name := fmt.Sprintf("audit-%s-%s.jsonl", now().UTC().Format("20060102T150405.000000000Z"), unsafeName.ReplaceAllString(orUnknown(host), "_"))
	f, err := os.CreateTemp(s.SpoolDir, ".tmp-audit-*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(payload); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	dst := filepath.Join(s.SpoolDir, name)
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return dst, nil
}

// Flush resends kept results, oldest first, removing each one delivered.
// It stops at the first failure (the target is still down) and returns
// how many were delivered and how many are still kept.
func (s *Sender) Flush(ctx context.Context) (sent, left int, err error) {
	ents, err := os.ReadDir(s.SpoolDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "audit-") && strings.HasSuffix(e.Name(), ".jsonl") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // the names start with the time
	left = len(names)
	for i, n := range names {
		if i == maxSpoolFiles {
			break
		}
		p := filepath.Join(s.SpoolDir, n)
		payload, rerr := readBounded(p, maxSpoolPayload)
		if rerr != nil {
			continue
		}
		if err := s.post(ctx, payload); err != nil {
			return sent, left, err
		}
		if err := os.Remove(p); err != nil {
			return sent, left, err
		}
		sent++
		left--
	}
	return sent, left, nil
}

// DefaultSpoolDir is where undelivered results are kept:
// $XDG_STATE_HOME/llmfence/audit-spool, else ~/.local/state/llmfence/audit-spool.
func DefaultSpoolDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "llmfence", "audit-spool")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "llmfence", "audit-spool")
	}
	return filepath.Join(os.TempDir(), "llmfence-audit-spool")
}
