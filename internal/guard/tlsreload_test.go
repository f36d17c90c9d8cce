package guard

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// tlsServer is a gateway serving TLS with Serve on loopback.
type tlsServer struct {
	srv  *Server
	addr string
	logs *lockedBuf
}

// serveTLSGateway is startTLSGateway that also hands back the Server and
// its debug log. reload, when set, becomes Options.Reload.
func serveTLSGateway(t *testing.T, files TLSFiles, reload func() (Config, error)) *tlsServer {
	t.Helper()
	up := newUpstream(t, nil)
	cfg := DefaultConfig()
	cfg.Upstream = up.URL
	cfg.TLS = files
	logs := &lockedBuf{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, base := serveOnLoopback(t, Options{Config: cfg, Auth: defaultAuth(), Logger: log, Reload: reload})
	// Serve reads the files before it accepts: wait for that, so the
	// test's changes come after.
	for deadline := time.Now().Add(10 * time.Second); s.certs.Load() == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("Serve did not load the certificate; log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return &tlsServer{srv: s, addr: strings.TrimPrefix(base, "https://"), logs: logs}
}

// tlsClient dials the gateway: roots verify the server, certs are the
// client certificate (if any). HTTP/1.1 only, so one connection carries
// request after request.
type tlsClient struct {
	roots *x509.CertPool
	certs []tls.Certificate
}

func (c tlsClient) dial(addr string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		RootCAs: c.roots, Certificates: c.certs, NextProtos: []string{"http/1.1"},
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// getTags sends GET /api/tags with the user key on conn and returns the status.
func getTags(conn *tls.Conn) (int, error) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, "GET /api/tags HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer %s\r\n\r\n", userKey); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, err
}

// servedSerial opens a new connection and returns the serial of the
// certificate the server presented, after checking a request works on it.
func (c tlsClient) servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	conn, err := c.dial(addr)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	if code, err := getTags(conn); err != nil || code != http.StatusOK {
		t.Fatalf("request on a new connection: status %d, %v", code, err)
	}
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// waitSerial waits until new handshakes present the certificate with
// serial want (polling reloads take a poll interval or two).
func (c tlsClient) waitSerial(t *testing.T, addr string, want *big.Int, logs *lockedBuf) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := c.servedSerial(t, addr)
		if got.Cmp(want) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("new handshakes still present serial %v, want %v; log:\n%s", got, want, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replaceFile rewrites path in place and moves its modification time on,
// so polling sees the change even where timestamps are coarse.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	mod := fi.ModTime().Add(time.Second)
	if err := os.Chtimes(path, mod, mod); err != nil {
		t.Fatal(err)
	}
}

// serialOf reads the serial of the first certificate in certPEM.
func serialOf(t *testing.T, certPEM []byte) *big.Int {
	t.Helper()
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber
}

func TestCertRotationWithoutRestart(t *testing.T) {
	triggers := []struct {
		name string
		// fire makes the gateway notice; files are the paths now holding
		// the new certificate and key.
		fire func(t *testing.T, g *tlsServer, files TLSFiles)
	}{
		{"Server.Reload", func(t *testing.T, g *tlsServer, files TLSFiles) {
			cfg := g.srv.Config()
			cfg.TLS = files
			if err := g.srv.Reload(cfg); err != nil {
				t.Fatal(err)
			}
		}},
		{"SIGHUP", func(t *testing.T, g *tlsServer, files TLSFiles) {
			g.srv.reloadNow("SIGHUP") // what watchReload does on the signal
		}},
		{"file change", func(t *testing.T, g *tlsServer, files TLSFiles) {}},
	}
	for _, withCA := range []bool{false, true} {
		for _, tr := range triggers {
			t.Run(fmt.Sprintf("%s/client_ca=%v", tr.name, withCA), func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				ca := newCA(t, "gateway CA")
				c1, k1 := ca.issue(t, "gateway", true)
				c2, k2 := ca.issue(t, "gateway", true)
				s1, s2 := serialOf(t, c1), serialOf(t, c2)
				if s1.Cmp(s2) == 0 {
					t.Fatal("test setup: both certificates have the same serial")
				}
				files := TLSFiles{Cert: writeFile(t, dir, "gw.crt", c1), Key: writeFile(t, dir, "gw.key", k1)}
				roots := x509.NewCertPool()
				roots.AppendCertsFromPEM(ca.pem)
				client := tlsClient{roots: roots}
				if withCA {
					files.ClientCA = writeFile(t, dir, "clients.pem", ca.pem)
					cc, ck := ca.issue(t, "alice-laptop", false)
					kp, err := tls.X509KeyPair(cc, ck)
					if err != nil {
						t.Fatal(err)
					}
					client.certs = []tls.Certificate{kp}
				}
				var g *tlsServer
				g = serveTLSGateway(t, files, func() (Config, error) { return g.srv.Config(), nil })

				old, err := client.dial(g.addr)
				if err != nil {
					t.Fatalf("first handshake: %v", err)
				}
				defer old.Close()
				if code, err := getTags(old); err != nil || code != http.StatusOK {
					t.Fatalf("first request: %d %v", code, err)
				}
				if got := old.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(s1) != 0 {
					t.Fatalf("first handshake saw serial %v, want %v", got, s1)
				}

				replaceFile(t, files.Cert, c2)
				replaceFile(t, files.Key, k2)
				tr.fire(t, g, files)
				client.waitSerial(t, g.addr, s2, g.logs)

				// The connection opened before the rotation still serves.
				if code, err := getTags(old); err != nil || code != http.StatusOK {
					t.Fatalf("old connection after the rotation: %d %v", code, err)
				}
				if got := old.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(s1) != 0 {
					t.Errorf("old connection's certificate changed to %v", got)
				}
				logs := g.logs.String()
				if !strings.Contains(logs, `msg="TLS certificate reloaded"`) || !strings.Contains(logs, "serial="+s2.String()) {
					t.Errorf("rotation not logged with the new serial:\n%s", logs)
				}
				if strings.Contains(logs, "reload failed") {
					t.Errorf("a reload failed:\n%s", logs)
				}
			})
		}
	}
}

func TestCertReloadToNewPaths(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "gateway CA")
	c1, k1 := ca.issue(t, "gateway", true)
	c2, k2 := ca.issue(t, "gateway", true)
	files := TLSFiles{Cert: writeFile(t, dir, "old.crt", c1), Key: writeFile(t, dir, "old.key", k1)}
	g := serveTLSGateway(t, files, nil)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	client := tlsClient{roots: roots}

	next := TLSFiles{Cert: writeFile(t, dir, "new.crt", c2), Key: writeFile(t, dir, "new.key", k2)}
	cfg := g.srv.Config()
	cfg.TLS = next
	if err := g.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := client.servedSerial(t, g.addr); got.Cmp(serialOf(t, c2)) != 0 {
		t.Fatalf("served serial %v after moving to new files, want %v", got, serialOf(t, c2))
	}
	if got := g.srv.Config().TLS; got != next {
		t.Errorf("Config().TLS = %+v, want the new paths %+v", got, next)
	}
	// Polling now watches the new files, not the old ones.
	c3, k3 := ca.issue(t, "gateway", true)
	replaceFile(t, next.Cert, c3)
	replaceFile(t, next.Key, k3)
	client.waitSerial(t, g.addr, serialOf(t, c3), g.logs)
}

func TestCertReloadKeepsRunningCertOnBadFiles(t *testing.T) {
	cases := []struct {
		name   string
		withCA bool
		// spoil breaks the files (or names broken ones) and returns the
		// TLS files the reload is asked to use.
		spoil func(t *testing.T, ca *testCA, files TLSFiles) TLSFiles
		want  string // in the logged error
	}{
		{"junk certificate", false, func(t *testing.T, ca *testCA, f TLSFiles) TLSFiles {
			replaceFile(t, f.Cert, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
			return f
		}, "loading certificate"},
		{"key of another certificate", false, func(t *testing.T, ca *testCA, f TLSFiles) TLSFiles {
			c2, _ := ca.issue(t, "gateway", true)
			replaceFile(t, f.Cert, c2)
			return f
		}, "private key does not match"},
		{"key file removed", false, func(t *testing.T, ca *testCA, f TLSFiles) TLSFiles {
			if err := os.Remove(f.Key); err != nil {
				t.Fatal(err)
			}
			return f
		}, "no such file"},
		{"new paths that do not exist", false, func(t *testing.T, ca *testCA, f TLSFiles) TLSFiles {
			dir := filepath.Dir(f.Cert)
			return TLSFiles{Cert: filepath.Join(dir, "absent.crt"), Key: filepath.Join(dir, "absent.key")}
		}, "absent.crt"},
		{"client CA bundle without certificates", true, func(t *testing.T, ca *testCA, f TLSFiles) TLSFiles {
			replaceFile(t, f.ClientCA, []byte("no certificates here\n"))
			return f
		}, "holds no PEM certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ca := newCA(t, "gateway CA")
			c1, k1 := ca.issue(t, "gateway", true)
			files := TLSFiles{Cert: writeFile(t, dir, "gw.crt", c1), Key: writeFile(t, dir, "gw.key", k1)}
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(ca.pem)
			client := tlsClient{roots: roots}
			if tc.withCA {
				files.ClientCA = writeFile(t, dir, "clients.pem", ca.pem)
				cc, ck := ca.issue(t, "alice-laptop", false)
				kp, err := tls.X509KeyPair(cc, ck)
				if err != nil {
					t.Fatal(err)
				}
				client.certs = []tls.Certificate{kp}
			}
			g := serveTLSGateway(t, files, nil)
			s1 := serialOf(t, c1)

			asked := tc.spoil(t, ca, files)
			cfg := g.srv.Config()
			cfg.TLS = asked
			cfg.MaxBodyBytes = 12345
			if err := g.srv.Reload(cfg); err != nil {
				t.Fatalf("Reload: %v (a bad certificate must not refuse the rest of the configuration)", err)
			}
			if got := client.servedSerial(t, g.addr); got.Cmp(s1) != 0 {
				t.Fatalf("served serial %v after a failed reload, want the running %v", got, s1)
			}
			got := g.srv.Config()
			if got.TLS != files {
				t.Errorf("Config().TLS = %+v, want the running files %+v", got.TLS, files)
			}
			if got.MaxBodyBytes != 12345 {
				t.Errorf("max_body_bytes = %d: the rest of the configuration was not applied", got.MaxBodyBytes)
			}
			logs := g.logs.String()
			if !strings.Contains(logs, "TLS certificate reload failed; keeping the running certificate") ||
				!strings.Contains(logs, tc.want) {
				t.Errorf("log does not report the failure (%q):\n%s", tc.want, logs)
			}

			// Good files at the running paths are picked up again.
			c2, k2 := ca.issue(t, "gateway", true)
			writeFile(t, dir, "gw.crt", c2)
			writeFile(t, dir, "gw.key", k2)
			if tc.withCA {
				writeFile(t, dir, "clients.pem", ca.pem)
			}
			if err := g.srv.Reload(g.srv.Config()); err != nil {
				t.Fatal(err)
			}
			if got := client.servedSerial(t, g.addr); got.Cmp(serialOf(t, c2)) != 0 {
				t.Fatalf("served serial %v after the files were fixed, want %v", got, serialOf(t, c2))
			}
		})
	}
}

func TestClientCARotation(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := newCA(t, "clients CA 2025"), newCA(t, "clients CA 2026")
	sc, sk := ca1.issue(t, "gateway", true)
	files := TLSFiles{Cert: writeFile(t, dir, "gw.crt", sc), Key: writeFile(t, dir, "gw.key", sk),
		ClientCA: writeFile(t, dir, "clients.pem", ca1.pem)}
	g := serveTLSGateway(t, files, nil)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca1.pem)
	clientOf := func(ca *testCA) tlsClient {
		c, k := ca.issue(t, "alice-laptop", false)
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return tlsClient{roots: roots, certs: []tls.Certificate{kp}}
	}
	oldClient, newClient := clientOf(ca1), clientOf(ca2)
	// works reports whether a fresh connection with c gets an answer.
	works := func(c tlsClient) bool {
		conn, err := c.dial(g.addr)
		if err != nil {
			return false
		}
		defer conn.Close()
		code, err := getTags(conn) // TLS 1.3 reports a refused client certificate on the first read
		return err == nil && code == http.StatusOK
	}
	if !works(oldClient) || works(newClient) {
		t.Fatal("before the rotation: want the old CA's client admitted and the new CA's refused")
	}
	open, err := oldClient.dial(g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if code, err := getTags(open); err != nil || code != http.StatusOK {
		t.Fatalf("request before the rotation: %d %v", code, err)
	}

	replaceFile(t, files.ClientCA, ca2.pem)
	if err := g.srv.Reload(g.srv.Config()); err != nil {
		t.Fatal(err)
	}
	if works(oldClient) {
		t.Error("after the rotation a client certificate of the removed CA is still admitted")
	}
	if !works(newClient) {
		t.Errorf("after the rotation the new CA's client certificate is refused; log:\n%s", g.logs.String())
	}
	if code, err := getTags(open); err != nil || code != http.StatusOK {
		t.Errorf("connection opened before the rotation: %d %v", code, err)
	}
	if !strings.Contains(g.logs.String(), "client_ca_changed=true") {
		t.Errorf("CA rotation not logged:\n%s", g.logs.String())
	}
}

func TestCertPollRereadsOnlyOnChange(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "gateway CA")
	c1, k1 := ca.issue(t, "gateway", true)
	files := TLSFiles{Cert: writeFile(t, dir, "gw.crt", c1), Key: writeFile(t, dir, "gw.key", k1)}
	logs := &lockedBuf{}
	r, err := newCertReloader(files, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() *big.Int { return r.cur.Load().leaf.SerialNumber }
	c2, k2 := ca.issue(t, "gateway", true)
	steps := []struct {
		name       string
		change     func()
		wantTried  bool
		wantSerial []byte // certificate PEM whose serial is served afterwards
		wantErrors int    // failures logged so far
	}{
		{"nothing changed", func() {}, false, c1, 0},
		{"certificate replaced, key not yet", func() { replaceFile(t, files.Cert, c2) }, true, c1, 1},
		{"still half rotated: not retried", func() {}, false, c1, 1},
		{"key replaced too", func() { replaceFile(t, files.Key, k2) }, true, c2, 1},
		{"nothing changed again", func() {}, false, c2, 1},
	}
	for _, st := range steps {
		st.change()
		if tried := r.poll("test"); tried != st.wantTried {
			t.Errorf("%s: poll tried = %v, want %v", st.name, tried, st.wantTried)
		}
		if got, want := serial(), serialOf(t, st.wantSerial); got.Cmp(want) != 0 {
			t.Errorf("%s: serving serial %v, want %v", st.name, got, want)
		}
		if got := strings.Count(logs.String(), "TLS certificate reload failed"); got != st.wantErrors {
			t.Errorf("%s: %d failures logged, want %d:\n%s", st.name, got, st.wantErrors, logs.String())
		}
	}
}

func TestCertReloadConcurrentHandshakes(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t, "gateway CA")
	ca1, ka1 := ca.issue(t, "gateway", true)
	ca2, ka2 := ca.issue(t, "gateway", true)
	files := TLSFiles{Cert: writeFile(t, dir, "gw.crt", ca1), Key: writeFile(t, dir, "gw.key", ka1)}
	g := serveTLSGateway(t, files, nil)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	client := tlsClient{roots: roots}
	valid := map[string]bool{serialOf(t, ca1).String(): true, serialOf(t, ca2).String(): true}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := client.dial(g.addr)
				if err != nil {
					errs <- fmt.Errorf("handshake during reloads: %w", err)
					return
				}
				code, err := getTags(conn)
				s := conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
				conn.Close()
				if err != nil || code != http.StatusOK || !valid[s] {
					errs <- fmt.Errorf("request during reloads: status %d, serial %s, %v", code, s, err)
					return
				}
			}
		}()
	}
	pairs := [][2][]byte{{ca2, ka2}, {ca1, ka1}}
	for i := range 20 {
		p := pairs[i%2]
		// Write both through a temporary name and rename, as rotation
		// tools do, so no reload sees a half-written pair.
		for j, name := range []string{"gw.crt", "gw.key"} {
			tmp := writeFile(t, dir, name+".tmp", p[j])
			if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.srv.Reload(g.srv.Config()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
