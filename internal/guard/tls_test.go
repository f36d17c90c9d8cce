package guard

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is an in-memory certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue signs a leaf certificate for a server (127.0.0.1) or a client.
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"llmfence test"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// startTLSGateway serves the gateway over TLS with Serve on loopback.
func startTLSGateway(t *testing.T, files TLSFiles, up *fakeUpstream, log *slog.Logger, sink ...UsageSink) string {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.TLS = files
	opts := Options{Config: cfg, Auth: defaultAuth(), Logger: log}
	if len(sink) > 0 {
		opts.Sink = sink[0]
	}
	_, base := serveOnLoopback(t, opts)
	return base
}

// serveOnLoopback builds a Server from opts and runs Serve on a loopback
// listener until the test ends; it returns the server and its https:// base.
func serveOnLoopback(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, "https://" + ln.Addr().String()
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, rogue := newCA(t, "llmfence clients CA"), newCA(t, "rogue CA")
	srvCert, srvKey := ca.issue(t, "gateway", true)
	goodCert, goodKey := ca.issue(t, "alice-laptop", false)
	badCert, badKey := rogue.issue(t, "alice-laptop", false)
	files := TLSFiles{
		Cert: writeFile(t, dir, "srv.crt", srvCert), Key: writeFile(t, dir, "srv.key", srvKey),
		ClientCA: writeFile(t, dir, "ca.pem", ca.pem),
	}
	up := newUpstream(t, nil)
	logs := &lockedBuf{}
	sink := &memSink{}
	base := startTLSGateway(t, files, up, slog.New(slog.NewTextHandler(logs, nil)), sink)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	pair := func(c, k []byte) []tls.Certificate {
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{kp}
	}
	cases := []struct {
		name   string
		certs  []tls.Certificate
		key    string
		want   int // 0: the TLS handshake must fail
		maxTLS uint16
	}{
		{"no client certificate", nil, userKey, 0, 0},
		{"no client certificate, TLS 1.2", nil, userKey, 0, tls.VersionTLS12},
		{"certificate from another CA", pair(badCert, badKey), userKey, 0, 0},
		{"certificate from another CA, TLS 1.2", pair(badCert, badKey), userKey, 0, tls.VersionTLS12},
		{"good certificate and key", pair(goodCert, goodKey), userKey, 200, 0},
		{"good certificate, no API key", pair(goodCert, goodKey), "", 401, 0},
		{"good certificate, wrong API key", pair(goodCert, goodKey), "lf_wrong", 401, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: tc.certs, MaxVersion: tc.maxTLS}}
			defer tr.CloseIdleConnections()
			before := len(up.seen())
			req, _ := http.NewRequest(http.MethodGet, base+"/api/tags", nil)
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if tc.want == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("request succeeded with status %d; want the handshake refused", resp.StatusCode)
				}
				if !strings.Contains(strings.ToLower(err.Error()), "certificate") && !strings.Contains(err.Error(), "tls") {
					t.Fatalf("error %v does not look like a refused TLS handshake", err)
				}
			} else {
				if err != nil {
					t.Fatalf("request: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
				}
			}
			if reached := len(up.seen()) > before; reached != (tc.want == 200) {
				t.Fatalf("upstream reached = %v", reached)
			}
		})
	}
	// The client certificate subject is in the audit record of each
	// request that presented one.
	var subjects []string
	for _, r := range sink.all() {
		subjects = append(subjects, r.ClientCert)
	}
	if len(subjects) == 0 || slices.ContainsFunc(subjects, func(s string) bool { return s != "CN=alice-laptop,O=llmfence test" }) {
		t.Fatalf("audit client_cert fields %q, want the subject of alice-laptop on every record", subjects)
	}
}

func TestTLSWithoutClientCA(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "server CA")
	c, k := ca.issue(t, "gateway", true)
	up := newUpstream(t, nil)
	base := startTLSGateway(t, TLSFiles{Cert: writeFile(t, dir, "c", c), Key: writeFile(t, dir, "k", k)}, up, nil)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/tags", nil)
	req.Header.Set("Authorization", "Bearer "+userKey)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Plain HTTP to the TLS port is not served.
	resp, err = http.Get(strings.Replace(base, "https", "http", 1) + "/api/tags")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the TLS port answered %d", resp.StatusCode)
		}
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	junk := writeFile(t, dir, "junk.pem", []byte("not pem"))
	ca := newCA(t, "ca")
	c, k := ca.issue(t, "gateway", true)
	cert, key := writeFile(t, dir, "c", c), writeFile(t, dir, "k", k)
	cases := []struct {
		name  string
		files TLSFiles
		want  string
	}{
		{"cert without key", TLSFiles{Cert: cert}, "go together"},
		{"client CA without TLS", TLSFiles{ClientCA: cert}, "need TLS"},
		{"unreadable key pair", TLSFiles{Cert: junk, Key: junk}, "loading certificate"},
		{"CA bundle without certificates", TLSFiles{Cert: cert, Key: key, ClientCA: junk}, "no PEM certificate"},
		{"missing CA bundle", TLSFiles{Cert: cert, Key: key, ClientCA: filepath.Join(dir, "absent")}, "reading client CA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ServerTLSConfig(tc.files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := ServerTLSConfig(TLSFiles{Cert: cert, Key: key, ClientCA: cert}); err != nil {
		t.Fatalf("good files refused: %v", err)
	}
}
