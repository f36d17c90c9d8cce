package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/llmfence/llmfence/internal/guard"
)

// fakeIssuer is an OpenID Connect issuer on loopback: discovery document
// and JWKS for one RSA key generated per test.
type fakeIssuer struct {
	*httptest.Server
	key       *rsa.PrivateKey
	kid       string
	jwksHits  atomic.Int64
	discovery atomic.Int64
}

func newIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &fakeIssuer{key: key, kid: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.discovery.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                is.URL,
			"jwks_uri":                              is.URL + "/keys",
			"authorization_endpoint":                is.URL + "/auth",
			"token_endpoint":                        is.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		is.jwksHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &key.PublicKey, KeyID: is.kid, Algorithm: string(jose.RS256), Use: "sig"}}})
	})
	is.Server = httptest.NewServer(mux)
	t.Cleanup(is.Close)
	return is
}

// sign makes a compact JWS over claims with key (the issuer's by default).
func sign(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (is *fakeIssuer) claims(mod func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": is.URL, "aud": "llmfence", "sub": "user-123",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

func (is *fakeIssuer) token(t *testing.T, mod func(map[string]any)) string {
	return sign(t, is.key, is.kid, is.claims(mod))
}

func newAuth(t *testing.T, is *fakeIssuer, mod func(*guard.OIDCConfig)) *OIDC {
	t.Helper()
	cfg := guard.OIDCConfig{Issuer: is.URL, Audience: "llmfence", AdminClaim: "groups=llm-admins",
		ModelsClaim: "llm_models", DefaultModels: []string{"llama3*"}}
	if mod != nil {
		mod(&cfg)
	}
	a, err := NewOIDC(cfg, OIDCOptions{HTTPClient: is.Client()})
	if err != nil {
		t.Fatalf("NewOIDC: %v", err)
	}
	return a
}

func TestOIDCRefusesBadTokens(t *testing.T) {
	is := newIssuer(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a := newAuth(t, is, nil)
	cases := []struct {
		name  string
		token string
	}{
		{"wrong audience", is.token(t, func(c map[string]any) { c["aud"] = "someone-else" })},
		{"wrong issuer", is.token(t, func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{"expired", is.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })},
		{"bad signature (other key, same kid)", sign(t, other, is.kid, is.claims(nil))},
		{"unknown kid", sign(t, other, "nope", is.claims(nil))},
		{"tampered payload", tamper(t, is.token(t, nil))},
		{"no subject", is.token(t, func(c map[string]any) { delete(c, "sub") })},
		{"alg none", unsignedToken(is.claims(nil))},
		{"not a JWT", "sk-opaque-token"},
		{"empty", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := a.Authenticate(context.Background(), tc.token)
			if !errors.Is(err, guard.ErrInvalidKey) {
				t.Fatalf("got principal %+v, err %v; want ErrInvalidKey", p, err)
			}
		})
	}
}

func tamper(t *testing.T, tok string) string {
	parts := strings.Split(tok, ".")
	var c map[string]any
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &c)
	c["sub"] = "admin"
	nb, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(nb)
	return strings.Join(parts, ".")
}

func unsignedToken(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

func TestOIDCPrincipal(t *testing.T) {
	is := newIssuer(t)
	cases := []struct {
		name   string
		cfg    func(*guard.OIDCConfig)
		claims func(map[string]any)
		want   guard.Principal
	}{
		{"plain user gets default models", nil, nil,
			guard.Principal{ID: "oidc:user-123", Name: "user-123", Models: []string{"llama3*"}}},
		{"preferred_username wins over email", nil, func(c map[string]any) {
			c["preferred_username"], c["email"] = "alice", "alice@example.com"
		}, guard.Principal{ID: "oidc:user-123", Name: "alice", Models: []string{"llama3*"}}},
		{"email when no username", nil, func(c map[string]any) { c["email"] = "bob@example.com" },
			guard.Principal{ID: "oidc:user-123", Name: "bob@example.com", Models: []string{"llama3*"}}},
		{"admin by group list, models from claim", nil, func(c map[string]any) {
			c["groups"] = []string{"staff", "llm-admins"}
			c["llm_models"] = []string{"qwen*", "mistral"}
		}, guard.Principal{ID: "oidc:user-123", Name: "user-123", Admin: true, Models: []string{"qwen*", "mistral"}}},
		{"group that only resembles admin", nil, func(c map[string]any) { c["groups"] = []string{"llm-admins-old"} },
			guard.Principal{ID: "oidc:user-123", Name: "user-123", Models: []string{"llama3*"}}},
		{"models claim as string", nil, func(c map[string]any) { c["llm_models"] = "qwen*, phi3" },
			guard.Principal{ID: "oidc:user-123", Name: "user-123", Models: []string{"qwen*", "phi3"}}},
		{"empty models claim allows none", nil, func(c map[string]any) { c["llm_models"] = []string{} },
			guard.Principal{ID: "oidc:user-123", Name: "user-123"}},
		{"no default: deny by default", func(c *guard.OIDCConfig) { c.DefaultModels = nil }, nil,
			guard.Principal{ID: "oidc:user-123", Name: "user-123"}},
		{"nested admin claim", func(c *guard.OIDCConfig) { c.AdminClaim = "realm_access.roles=gpu-admin" },
			func(c map[string]any) { c["realm_access"] = map[string]any{"roles": []string{"gpu-admin"}} },
			guard.Principal{ID: "oidc:user-123", Name: "user-123", Admin: true, Models: []string{"llama3*"}}},
		{"space-separated scope claim", func(c *guard.OIDCConfig) { c.AdminClaim = "scope=llm.admin" },
			func(c map[string]any) { c["scope"] = "openid llm.admin" },
			guard.Principal{ID: "oidc:user-123", Name: "user-123", Admin: true, Models: []string{"llama3*"}}},
		{"audience list containing ours", nil, func(c map[string]any) { c["aud"] = []string{"other", "llmfence"} },
			guard.Principal{ID: "oidc:user-123", Name: "user-123", Models: []string{"llama3*"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuth(t, is, tc.cfg)
			p, err := a.Authenticate(context.Background(), is.token(t, tc.claims))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if p.ID != tc.want.ID || p.Name != tc.want.Name || p.Admin != tc.want.Admin ||
				!slices.Equal(p.Models, tc.want.Models) || p.Limits != nil || p.AllowCloud {
				t.Fatalf("principal = %+v, want %+v", *p, tc.want)
			}
		})
	}
}

func TestOIDCIssuerDownIsUnavailable(t *testing.T) {
	is := newIssuer(t)
	tok := is.token(t, nil)
	url := is.URL
	is.Close()
	a, err := NewOIDC(guard.OIDCConfig{Issuer: url, Audience: "llmfence"}, OIDCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(context.Background(), tok)
	if err == nil || errors.Is(err, guard.ErrInvalidKey) {
		t.Fatalf("err = %v; want an unavailable (non-401) error", err)
	}
	if err := a.Discover(context.Background()); err == nil {
		t.Fatal("Discover against a closed issuer succeeded")
	}
}

func TestOIDCDiscoversOnceAndCachesKeys(t *testing.T) {
	is := newIssuer(t)
	a := newAuth(t, is, nil)
	for range 3 {
		if _, err := a.Authenticate(context.Background(), is.token(t, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if d, k := is.discovery.Load(), is.jwksHits.Load(); d != 1 || k != 1 {
		t.Fatalf("discovery fetched %d times, JWKS %d times; want 1 and 1", d, k)
	}
}

func TestNewOIDCValidates(t *testing.T) {
	cases := []guard.OIDCConfig{
		{},
		{Issuer: "https://login.example.com"}, // no audience
		{Issuer: "http://login.example.com", Audience: "x"},                        // plain http off loopback
		{Issuer: "ftp://login.example.com", Audience: "x"},                         // scheme
		{Issuer: "https://login.example.com", Audience: "x", AdminClaim: "groups"}, // no =value
	}
	for _, c := range cases {
		if _, err := NewOIDC(c, OIDCOptions{}); err == nil {
			t.Errorf("NewOIDC(%+v) accepted", c)
		}
	}
}

// TestGatewayWithOIDC runs the real gateway with Chain(API keys, OIDC).
func TestGatewayWithOIDC(t *testing.T) {
	is := newIssuer(t)
	var upstreamHits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/api/pull":
			io.WriteString(w, `{"status":"success"}`)
		default:
			io.WriteString(w, `{"model":"llama3","response":"hi","done":true,"prompt_eval_count":3,"eval_count":2}`)
		}
	}))
	defer up.Close()

	const apiKey = "lf_AbCd1234_secretsecretsecretsecretsecretsecret"
	keysAuth := guard.AuthenticatorFunc(func(ctx context.Context, k string) (*guard.Principal, error) {
		if k == apiKey {
			return &guard.Principal{ID: "AbCd1234", Name: "svc", Models: []string{"*"}}, nil
		}
		return nil, guard.ErrInvalidKey
	})
	cfg := guard.DefaultConfig()
	cfg.Upstream = up.URL
	srv, err := guard.New(guard.Options{Config: cfg, Auth: Chain(keysAuth, newAuth(t, is, nil))})
	if err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(srv)
	defer gw.Close()
	defer srv.Close(context.Background())

	user := is.token(t, nil)
	admin := is.token(t, func(c map[string]any) { c["groups"] = []string{"llm-admins"} })
	expired := is.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	wrongAud := is.token(t, func(c map[string]any) { c["aud"] = "grafana" })
	gen := `{"model":"llama3","prompt":"hi","stream":false}`
	cases := []struct {
		name, path, token, body string
		want                    int
	}{
		{"user token generates", "/api/generate", user, gen, 200},
		{"user token, model outside default", "/api/generate", user, `{"model":"qwen2","prompt":"hi","stream":false}`, 403},
		{"user token cannot pull", "/api/pull", user, `{"model":"llama3"}`, 403},
		{"admin token pulls", "/api/pull", admin, `{"model":"llama3"}`, 200},
		{"expired token", "/api/generate", expired, gen, 401},
		{"wrong audience", "/api/generate", wrongAud, gen, 401},
		{"API key still works", "/api/generate", apiKey, gen, 200},
		{"wrong API key", "/api/generate", apiKey + "x", gen, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := upstreamHits.Load()
			req, _ := http.NewRequest(http.MethodPost, gw.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := gw.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			reached := upstreamHits.Load() > before
			if reached != (tc.want == 200) {
				t.Fatalf("upstream reached = %v with status %d", reached, resp.StatusCode)
			}
		})
	}
}
