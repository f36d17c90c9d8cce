package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestGuardCommandMTLSAndOIDC runs `llmfence guard` with mutual TLS and
// OIDC tokens from a loopback issuer.
func TestGuardCommandMTLSAndOIDC(t *testing.T) {
	dir := t.TempDir()
	// Issuer.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var issuer *httptest.Server
	issuer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": issuer.URL, "jwks_uri": issuer.URL + "/keys",
				"id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/keys":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &rk.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer issuer.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rk}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	token := func(aud string, groups ...string) string {
		tok, err := jwt.Signed(signer).Claims(map[string]any{"iss": issuer.URL, "aud": aud, "sub": "u-9",
			"preferred_username": "carol", "groups": groups, "exp": time.Now().Add(time.Hour).Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	// PKI: one CA for the server and the clients.
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(n int64, server bool) (certFile, keyFile string, pair tls.Certificate) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: "leaf"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		cp := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		kp := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
		certFile, keyFile = filepath.Join(dir, big.NewInt(n).String()+".crt"), filepath.Join(dir, big.NewInt(n).String()+".key")
		os.WriteFile(certFile, cp, 0o600)
		os.WriteFile(keyFile, kp, 0o600)
		pair, err = tls.X509KeyPair(cp, kp)
		if err != nil {
			t.Fatal(err)
		}
		return certFile, keyFile, pair
	}
	srvCert, srvKey, _ := leaf(2, true)
	_, _, clientPair := leaf(3, false)
	caFile := filepath.Join(dir, "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600)

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"model":"tiny","response":"hi","done":true,"prompt_eval_count":2,"eval_count":1}`)
	}))
	defer up.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listen := freeAddr(t)
	var stderr bytes.Buffer
	cmd := newGuardCmd(&env{stdout: io.Discard, stderr: &stderr, db: filepath.Join(dir, "g.db")})
	cmd.SetArgs([]string{"--upstream", up.URL, "--listen", listen, "--metrics", "",
		"--tls-cert", srvCert, "--tls-key", srvKey, "--client-ca", caFile,
		"--oidc-issuer", issuer.URL, "--oidc-audience", "llmfence", "--oidc-admin-claim", "groups=llm-admins",
		"--oidc-default-models", "tiny"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
	}
	do := func(c *http.Client, path, tok string) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, "https://"+listen+path, strings.NewReader(`{"model":"tiny","prompt":"x","stream":false}`))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	good := client(clientPair)
	var status int
	for range 100 {
		if status, err = do(good, "/api/generate", token("llmfence")); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || status != 200 {
		t.Fatalf("client cert + token: status %d, err %v; stderr: %s", status, err, stderr.String())
	}
	checks := []struct {
		name, path, tok string
		c               *http.Client
		want            int // 0: refused in the handshake
	}{
		{"no client certificate", "/api/generate", token("llmfence"), client(), 0},
		{"certificate but no token", "/api/generate", "", good, 401},
		{"token for another audience", "/api/generate", token("other"), good, 401},
		{"non-admin token, admin route", "/api/pull", token("llmfence"), good, 403},
		{"admin token, admin route", "/api/pull", token("llmfence", "llm-admins"), good, 200},
	}
	for _, c := range checks {
		got, err := do(c.c, c.path, c.tok)
		if c.want == 0 {
			if err == nil {
				t.Errorf("%s: answered %d, want a refused handshake", c.name, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: status %d, err %v; want %d", c.name, got, err, c.want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("guard exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("guard did not shut down")
	}
	if !strings.Contains(stderr.String(), "https+client-cert://") {
		t.Errorf("start-up line does not say mTLS: %s", stderr.String())
	}
}
