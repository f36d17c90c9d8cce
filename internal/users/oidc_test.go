package users

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/llmfence/llmfence/internal/store"
)

// provider is an OpenID Connect provider the test runs on loopback: its
// authorize endpoint signs in `user` at once and sends the browser back.
type provider struct {
	*httptest.Server
	key    *rsa.PrivateKey
	mu     sync.Mutex
	nonces map[string]string // code -> nonce
	user   map[string]any    // claims of who signs in
	nonce  string            // when set, the token carries this nonce instead
}

func newProvider(t *testing.T) *provider {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	p := &provider{key: key, nonces: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": p.URL, "jwks_uri": p.URL + "/keys", "authorization_endpoint": p.URL + "/authorize",
			"token_endpoint": p.URL + "/token", "id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			http.Error(w, "PKCE required", 400)
			return
		}
		code := randText()
		p.mu.Lock()
		p.nonces[code] = q.Get("nonce")
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p.mu.Lock()
		nonce, ok := p.nonces[r.PostForm.Get("code")]
		delete(p.nonces, r.PostForm.Get("code"))
		if p.nonce != "" {
			nonce = p.nonce
		}
		claims := map[string]any{"iss": p.URL, "aud": "llmfence-serve", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "nonce": nonce}
		for k, v := range p.user {
			claims[k] = v
		}
		p.mu.Unlock()
		if !ok || r.PostForm.Get("code_verifier") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, 400)
			return
		}
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
		idt, _ := jwt.Signed(sig).Claims(claims).Serialize()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "id_token": idt, "expires_in": 3600})
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func TestOIDCSignIn(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenServer(ctx, filepath.Join(t.TempDir(), "s.db"), store.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prov := newProvider(t)
	var signedIn []store.User
	var mu sync.Mutex
	var app *httptest.Server
	mux := http.NewServeMux()
	app = httptest.NewServer(mux)
	defer app.Close()
	roles, _ := ParseGroupRoles("secops=admin,noc=operator")
	o, err := NewOIDC(ctx, st, OIDCConfig{Issuer: prov.URL, ClientID: "llmfence-serve", ClientSecret: "s3cret",
		RedirectURL: app.URL + "/auth/oidc/callback", Roles: roles, HTTPClient: prov.Client()})
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/auth/oidc", func(w http.ResponseWriter, r *http.Request) { o.Start(w, r) })
	mux.HandleFunc("/auth/oidc/callback", func(w http.ResponseWriter, r *http.Request) {
		u, err := o.Finish(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		mu.Lock()
		signedIn = append(signedIn, u)
		mu.Unlock()
		io.WriteString(w, "welcome "+u.Name)
	})
	login := func(claims map[string]any) (int, string) {
		prov.mu.Lock()
		prov.user = claims
		prov.mu.Unlock()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		resp, err := c.Get(app.URL + "/auth/oidc")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := login(map[string]any{"sub": "u1", "preferred_username": "sam", "groups": []any{"noc", "secops"}}); code != 200 || body != "welcome sam" {
		t.Fatalf("sign-in: %d %s", code, body)
	}
	if signedIn[0].Role != RoleAdmin || signedIn[0].OIDCSubject != "u1" {
		t.Errorf("user: %+v", signedIn[0])
	}
	// The groups decide at every sign-in.
	if code, _ := login(map[string]any{"sub": "u1", "preferred_username": "sam", "groups": []any{"noc"}}); code != 200 {
		t.Fatal("second sign-in refused")
	}
	if u, _ := st.UserByOIDC(ctx, "u1"); u.Role != RoleOperator {
		t.Errorf("role after leaving secops: %s", u.Role)
	}
	if code, body := login(map[string]any{"sub": "u2", "groups": []any{"marketing"}}); code != 403 || !strings.Contains(body, "no group") {
		t.Errorf("unmapped group: %d %s", code, body)
	}
	prov.nonce = "replayed-nonce"
	if code, body := login(map[string]any{"sub": "u1", "groups": []any{"secops"}}); code != 403 || !strings.Contains(body, "nonce") {
		t.Errorf("wrong nonce: %d %s", code, body)
	}
	prov.nonce = ""
	// A callback without the flow cookie (a replayed or forged answer).
	resp, _ := http.Get(app.URL + "/auth/oidc/callback?code=x&state=y")
	if resp.StatusCode != 403 {
		t.Errorf("callback without a sign-in in progress: %d", resp.StatusCode)
	}
}
