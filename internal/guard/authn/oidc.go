package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/llmfence/llmfence/internal/guard"
)

// MaxTokenBytes bounds the size of a bearer token handed to the verifier.
const MaxTokenBytes = 16 << 10

// OIDCOptions tune an OIDC authenticator; zero fields take defaults.
type OIDCOptions struct {
	// HTTPClient fetches the discovery document and JWKS. The default
	// ignores proxy environment variables and times out after 10s.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock for expiry checks; nil means time.Now.
	Now func() time.Time
	// RetryDiscovery is the least time between two failed discovery
	// attempts (default 10s); requests in between get 503 at once.
	RetryDiscovery time.Duration
}

// OIDC authenticates JWT bearer tokens (ID tokens or JWT access tokens)
// issued by one OpenID Connect issuer. The discovery document is fetched
// on first use (or by Discover) and kept; the JWKS is fetched and
// refreshed by go-oidc when a token names an unknown key ID.
type OIDC struct {
	cfg  guard.OIDCConfig
	opts OIDCOptions

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	lastErr  error
	lastTry  time.Time
}

// NewOIDC checks cfg and returns an authenticator; it does not contact the
// issuer (see Discover).
func NewOIDC(cfg guard.OIDCConfig, opts OIDCOptions) (*OIDC, error) {
	if !cfg.Enabled() {
		return nil, errors.New("oidc: no issuer configured")
	}
	c := guard.DefaultConfig()
	c.OIDC = cfg
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if opts.HTTPClient == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext, TLSHandshakeTimeout: 5 * time.Second}}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetryDiscovery <= 0 {
		opts.RetryDiscovery = 10 * time.Second
	}
	return &OIDC{cfg: cfg, opts: opts}, nil
}

// Discover fetches the issuer's discovery document now (Authenticate
// does it lazily otherwise), so a misconfiguration shows at start-up.
func (o *OIDC) Discover(ctx context.Context) error {
	_, err := o.getVerifier(ctx, true)
	return err
}

func (o *OIDC) getVerifier(ctx context.Context, force bool) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	now := o.opts.Now()
	if !force && o.lastErr != nil && now.Sub(o.lastTry) < o.opts.RetryDiscovery {
		return nil, o.lastErr
	}
	o.lastTry = now
	// The provider keeps this context's HTTP client for JWKS fetches; it
	// must outlive the request, so only the client is taken from ctx.
	pctx := oidc.ClientContext(context.WithoutCancel(ctx), o.opts.HTTPClient)
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	p, err := newProvider(dctx, pctx, o.cfg.Issuer)
	if err != nil {
		o.lastErr = fmt.Errorf("oidc: discovery at %s failed: %w", o.cfg.Issuer, err)
		o.opts.Logger.Error("OIDC discovery failed", "issuer", o.cfg.Issuer, "err", err)
		return nil, o.lastErr
	}
	o.verifier = p.Verifier(&oidc.Config{ClientID: o.cfg.Audience, Now: o.opts.Now})
	o.lastErr = nil
	return o.verifier, nil
}

// newProvider runs discovery bounded by ctx while the provider keeps the
// long-lived client context pctx.
func newProvider(ctx, pctx context.Context, issuer string) (*oidc.Provider, error) {
	type result struct {
		p   *oidc.Provider
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := oidc.NewProvider(pctx, issuer)
		ch <- result{p, err}
	}()
	select {
	case r := <-ch:
		return r.p, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Authenticate implements guard.Authenticator. A token that fails
// verification (signature, issuer, audience, expiry, shape) is an
// error matching guard.ErrInvalidKey (401); an issuer that cannot be
// reached for discovery is any other error (503).
func (o *OIDC) Authenticate(ctx context.Context, token string) (*guard.Principal, error) {
	if len(token) > MaxTokenBytes || strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: neither an llmfence API key nor a JWT", guard.ErrInvalidKey)
	}
	sub, claims, err := o.VerifyClaims(ctx, token)
	if err != nil {
		return nil, err
	}
	return o.principal(sub, claims), nil
}

// VerifyClaims verifies a JWT as Authenticate does (signature, issuer,
// audience, expiry) and returns its subject and claims, for callers that
// map claims themselves (llmfence serve's sign-in).
func (o *OIDC) VerifyClaims(ctx context.Context, token string) (string, map[string]any, error) {
	if len(token) > MaxTokenBytes || strings.Count(token, ".") != 2 {
		return "", nil, fmt.Errorf("%w: not a JWT", guard.ErrInvalidKey)
	}
	v, err := o.getVerifier(ctx, false)
	if err != nil {
		return "", nil, err
	}
	idt, err := v.Verify(ctx, token)
	if err != nil {
		o.opts.Logger.Debug("OIDC token refused", "err", err)
		return "", nil, fmt.Errorf("%w: token refused: %w", guard.ErrInvalidKey, err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", nil, fmt.Errorf("%w: token claims: %w", guard.ErrInvalidKey, err)
	}
	if idt.Subject == "" {
		return "", nil, fmt.Errorf("%w: token has no subject", guard.ErrInvalidKey)
	}
	return idt.Subject, claims, nil
}

func (o *OIDC) principal(sub string, claims map[string]any) *guard.Principal {
	p := &guard.Principal{ID: "oidc:" + sub, Name: sub, AllowCloud: o.cfg.AllowCloud}
	for _, c := range []string{"preferred_username", "email"} {
		if s, ok := claims[c].(string); ok && s != "" {
			p.Name = s
			break
		}
	}
	if name, want, ok := o.cfg.AdminRule(); ok {
		v, found := lookup(claims, name)
		p.Admin = found && slices.Contains(values(v), want)
	}
	p.Models = append([]string(nil), o.cfg.DefaultModels...)
	if o.cfg.ModelsClaim != "" {
		if v, found := lookup(claims, o.cfg.ModelsClaim); found {
			p.Models = values(v)
		}
	}
	return p
}

// lookup finds a claim by its exact name, else by walking a dotted path
// through nested objects (realm_access.roles).
func lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	parts := strings.Split(name, ".")
	var cur any = claims
	for _, part := range parts {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// values reads a claim as a list of strings: a JSON list (non-strings
// skipped), a comma- or space-separated string, or a boolean ("true").
func values(v any) []string {
	var out []string
	switch t := v.(type) {
	case string:
		out = strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == ' ' })
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case bool:
		if t {
			out = append(out, "true")
		}
	}
	return out
}
