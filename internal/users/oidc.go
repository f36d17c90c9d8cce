package users

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/llmfence/llmfence/internal/guard"
	"github.com/llmfence/llmfence/internal/guard/authn"
	"github.com/llmfence/llmfence/internal/store"
)

// OIDCConfig is single sign-on through an OpenID Connect provider
// (authorization code flow with PKCE). ID tokens are verified by the
// guard's verifier (internal/guard/authn); the user's groups decide the
// role, and a user in no mapped group is refused.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is BaseURL + "/auth/oidc/callback".
	RedirectURL string
	// GroupsClaim names the claim with the user's groups (default
	// "groups"; a dotted name walks nested objects).
	GroupsClaim string
	Roles       GroupRoles
	// HTTPClient talks to the provider (default: 10 s, no proxy).
	HTTPClient *http.Client
	Secure     bool // mark the flow cookie Secure
}

// OIDC runs the sign-in flow.
type OIDC struct {
	cfg      OIDCConfig
	st       store.UserStore
	verifier *authn.OIDC
	endpoint oauth2.Endpoint
	key      []byte // signs the flow cookie
	now      func() time.Time
}

const flowCookie = "llmfence_oidc"

// NewOIDC discovers the provider and prepares the flow.
func NewOIDC(ctx context.Context, st store.UserStore, cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("single sign-on needs an issuer, a client ID and the dashboard's base URL")
	}
	if len(cfg.Roles) == 0 {
		return nil, errors.New("single sign-on needs a group to role mapping (nobody could sign in)")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.HTTPClient == nil {
		d := &net.Dialer{Timeout: 5 * time.Second}
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext}}
	}
	v, err := authn.NewOIDC(guard.OIDCConfig{Issuer: cfg.Issuer, Audience: cfg.ClientID}, authn.OIDCOptions{HTTPClient: cfg.HTTPClient})
	if err != nil {
		return nil, err
	}
	if err := v.Discover(ctx); err != nil {
		return nil, err
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, cfg.HTTPClient), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery at %s: %w", cfg.Issuer, err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	return &OIDC{cfg: cfg, st: st, verifier: v, endpoint: p.Endpoint(), key: key, now: time.Now}, nil
}

func (o *OIDC) oauth() *oauth2.Config {
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: o.endpoint,
		RedirectURL: o.cfg.RedirectURL, Scopes: []string{oidc.ScopeOpenID, "profile", "email", "groups"}}
}

func randText() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign and unsign protect the flow cookie (state, nonce, PKCE verifier,
// expiry) with an HMAC: a cookie not issued by this server is refused.
func (o *OIDC) sign(v string) string {
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(v))
	return v + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (o *OIDC) unsign(s string) (string, bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", false
	}
	if !hmac.Equal([]byte(o.sign(s[:i])), []byte(s)) {
		return "", false
	}
	return s[:i], true
}

// Start sends the browser to the provider.
func (o *OIDC) Start(w http.ResponseWriter, r *http.Request) error {
	state, nonce, verifier := randText(), randText(), oauth2.GenerateVerifier()
	exp := o.now().Add(10 * time.Minute).Unix()
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: o.sign(state + "~" + nonce + "~" + verifier + "~" + strconv.FormatInt(exp, 10)),
		Path: "/auth/oidc", HttpOnly: true, Secure: o.cfg.Secure || r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: 600})
	http.Redirect(w, r, o.oauth().AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
	return nil
}

// Finish checks the provider's answer: the state against the flow cookie
// (once: the cookie is cleared), the code exchanged for an ID token, the
// token verified, its nonce checked, the role taken from the groups.
func (o *OIDC) Finish(w http.ResponseWriter, r *http.Request) (store.User, error) {
	ck, err := r.Cookie(flowCookie)
	http.SetCookie(w, &http.Cookie{Name: flowCookie, Value: "", Path: "/auth/oidc", MaxAge: -1, HttpOnly: true})
	if err != nil {
		return store.User{}, errors.New("no sign-in in progress (start again)")
	}
	raw, ok := o.unsign(ck.Value)
	parts := strings.Split(raw, "~")
	if !ok || len(parts) != 4 {
		return store.User{}, errors.New("the sign-in cookie was not issued by this server")
	}
	exp, _ := strconv.ParseInt(parts[3], 10, 64)
	if o.now().Unix() > exp {
		return store.User{}, errors.New("the sign-in took too long (start again)")
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return store.User{}, fmt.Errorf("the provider said %q", e)
	}
	if !SameToken(q.Get("state"), parts[0]) {
		return store.User{}, errors.New("the answer does not belong to this sign-in")
	}
	ctx := oidc.ClientContext(r.Context(), o.cfg.HTTPClient)
	tok, err := o.oauth().Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		return store.User{}, fmt.Errorf("exchanging the code: %w", err)
	}
	idt, _ := tok.Extra("id_token").(string)
	sub, claims, err := o.verifier.VerifyClaims(r.Context(), idt)
	if err != nil {
		return store.User{}, err
	}
	if n, _ := claims["nonce"].(string); !SameToken(n, parts[1]) {
		return store.User{}, errors.New("the ID token's nonce does not match this sign-in")
	}
	role := o.cfg.Roles.Role(claimValues(claims, o.cfg.GroupsClaim))
	if role == "" {
		return store.User{}, fmt.Errorf("%s is in no group that has a role here", sub)
	}
	return o.upsert(r.Context(), sub, claims, role)
}

func (o *OIDC) upsert(ctx context.Context, sub string, claims map[string]any, role string) (store.User, error) {
	u, err := o.st.UserByOIDC(ctx, sub)
	switch {
	case err == nil:
		if u.Disabled {
			return store.User{}, errors.New("this account is disabled")
		}
		u.Role = role // the provider's groups decide, at every sign-in
		return u, o.st.UpdateUser(ctx, u)
	case !errors.Is(err, store.ErrNotFound):
		return store.User{}, err
	}
	name := "oidc:" + sub
	for _, c := range []string{"preferred_username", "email"} {
		if s, ok := claims[c].(string); ok && s != "" && len(s) <= 64 {
			if _, err := o.st.UserByName(ctx, s); errors.Is(err, store.ErrNotFound) {
				name = s
			}
			break
		}
	}
	return o.st.CreateUser(ctx, store.User{Name: name, Role: role, OIDCSubject: sub})
}

// claimValues reads a claim (dotted names walk nested objects) as strings.
func claimValues(claims map[string]any, name string) []string {
	var cur any = claims
	if v, ok := claims[name]; ok {
		cur = v
	} else {
		for _, part := range strings.Split(name, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[part]
		}
	}
	var out []string
	switch t := cur.(type) {
	case string:
		out = strings.FieldsFunc(t, func(r rune) bool { return r == ',' || r == ' ' })
	case []any:
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
