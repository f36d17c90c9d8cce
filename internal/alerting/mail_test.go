package alerting

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/store"
)

// mailbox is a real SMTP server (github.com/emersion/go-smtp) on
// loopback: STARTTLS with a certificate for 127.0.0.1, AUTH PLAIN only
// over TLS, and every accepted message kept.
type mailbox struct {
	addr string
	pool *x509.CertPool
	mu   sync.Mutex
	msgs []received
}

type received struct {
	user, from string
	to         []string
	tls        bool
	data       []byte
}

type mbSession struct {
	mb   *mailbox
	conn *smtp.Conn
	user string
	cur  received
}

func (s *mbSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *mbSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "alerts" || password != "s3cret pass" {
			return errors.New("invalid credentials")
		}
		s.user = username
		return nil
	}), nil
}
func (s *mbSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "authentication required"}
	}
	s.cur = received{user: s.user, from: from}
	return nil
}
func (s *mbSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}
func (s *mbSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	_, s.cur.tls = s.conn.TLSConnectionState()
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, s.cur)
	s.mb.mu.Unlock()
	return nil
}
func (s *mbSession) Reset()        { s.cur = received{} }
func (s *mbSession) Logout() error { return nil }

func (mb *mailbox) messages() []received {
	mb.mu.Lock()
	defer mb.mu.Unlock()
	return append([]received(nil), mb.msgs...)
}

func startMailbox(t *testing.T) *mailbox {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail test"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	mb := &mailbox{pool: x509.NewCertPool()}
	mb.pool.AddCert(cert)
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) { return &mbSession{mb: mb, conn: c}, nil }))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.AllowInsecureAuth = false // AUTH only after STARTTLS
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mb.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return mb
}

func mailRig(t *testing.T, smtpCfg *SMTPConfig) (*Manager, store.ServerStore, *jobs.Engine) {
	t.Helper()
	ctx := context.Background()
	dsn := filepath.Join(t.TempDir(), "s.db")
	st, err := store.OpenServer(ctx, dsn, store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := New(st, Config{SMTP: smtpCfg, RetryBase: 100 * time.Millisecond, MaxAttempts: 3, BaseURL: "http://127.0.0.1:8443", Logger: quiet()})
	cfg := jobs.DefaultConfig()
	cfg.Serve, cfg.PollInterval, cfg.Logger = true, 50*time.Millisecond, quiet()
	cfg.Hooks.Alerts, cfg.Hooks.Register = m.Hook, m.Register
	eng, err := jobs.Open(ctx, st, dsn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	m.Attach(eng)
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Stop(5 * time.Second) })
	return m, st, eng
}

// parsed is a received message, decoded.
type parsed struct {
	hdr  mail.Header
	subj string
	body string
}

func parse(t *testing.T, data []byte) parsed {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, data)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("Content-Transfer-Encoding %q", msg.Header.Get("Content-Transfer-Encoding"))
	}
	b, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte("\r\n")) {
		if len(line) > 998 {
			t.Errorf("a line of %d bytes (RFC 5322 allows 998)", len(line))
		}
	}
	return parsed{hdr: msg.Header, subj: subj, body: string(b)}
}

// TestSMTPDelivery: alerts and a test ping go through a real SMTP server
// with STARTTLS and AUTH PLAIN: envelope, headers and body as sent.
func TestSMTPDelivery(t *testing.T) {
	mb := startMailbox(t)
	m, st, _ := mailRig(t, &SMTPConfig{Addr: mb.addr, From: "llmfence alerts <alerts@llmfence.example>", User: "alerts", Password: "s3cret pass",
		TLS: &tls.Config{RootCAs: mb.pool, MinVersion: tls.VersionTLS12}})
	ctx := context.Background()
	if _, err := m.SaveChannel(ctx, []byte(`{"name":"sec","kind":"email","url":"mailto:Security Team <sec@corp.example>"}`), "alice"); err == nil {
		// A display name is a valid address too; the envelope must carry
		// the bare address.
		t.Log("channel with a display name accepted")
	}
	v, err := m.SaveChannel(ctx, []byte(`{"name":"ops","kind":"email","url":"mailto:ops@corp.example","min_severity":"medium"}`), "alice")
	if err != nil {
		t.Fatal(err)
	}
	ch := v.(ChannelView)
	if err := m.TestChannel(ctx, ch.ID); err != nil {
		t.Fatal(err)
	}
	// A real alert: an exposed service, through the inventory and the
	// alert job.
	r := &rig{st: st, eng: m.eng, m: m}
	r.scanned(t, exposed("10.0.0.9"))
	deadline := time.Now().Add(30 * time.Second)
	for len(mb.messages()) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	msgs := mb.messages()
	var ping, exposedMsg *received
	for i := range msgs {
		p := parse(t, msgs[i].data)
		switch {
		case strings.Contains(p.subj, "test"):
			ping = &msgs[i]
		case strings.Contains(p.subj, "exposed service"):
			exposedMsg = &msgs[i]
		}
		if msgs[i].user != "alerts" || !msgs[i].tls || msgs[i].from != "alerts@llmfence.example" {
			t.Errorf("message %d: user %q tls %v envelope from %q", i, msgs[i].user, msgs[i].tls, msgs[i].from)
		}
	}
	if ping == nil || exposedMsg == nil {
		t.Fatalf("received %d messages; want the test ping and the exposed-service alert", len(msgs))
	}
	for _, mm := range []*received{ping, exposedMsg} {
		p := parse(t, mm.data)
		if len(mm.to) != 1 || !(mm.to[0] == "ops@corp.example" || mm.to[0] == "sec@corp.example") {
			t.Errorf("envelope recipients %q", mm.to)
		}
		if a, err := mail.ParseAddress(p.hdr.Get("From")); err != nil || a.Address != "alerts@llmfence.example" || a.Name != "llmfence alerts" {
			t.Errorf("From %q: %v", p.hdr.Get("From"), err)
		}
		if p.hdr.Get("Message-Id") == "" || p.hdr.Get("Date") == "" || p.hdr.Get("Auto-Submitted") != "auto-generated" {
			t.Errorf("headers %v", p.hdr)
		}
		if _, err := p.hdr.Date(); err != nil {
			t.Errorf("Date: %v", err)
		}
	}
	p := parse(t, exposedMsg.data)
	if !strings.HasPrefix(p.subj, "llmfence [") || !strings.Contains(p.body, "10.0.0.9:11434") || !strings.Contains(p.body, "exposed service") ||
		!strings.Contains(p.body, "http://127.0.0.1:8443/services/") {
		t.Errorf("exposed-service message: subject %q body\n%s", p.subj, p.body)
	}
	if p := parse(t, ping.data); !strings.Contains(p.body, "test ping from llmfence serve to channel") {
		t.Errorf("ping body %q", p.body)
	}
}

// TestSMTPMessageContent: a summary from a hostile server (line breaks, a
// lone dot, a forged header, Japanese, a very long line) arrives as one
// line of text; the subject survives non-ASCII; bad credentials and a
// server without STARTTLS fail clearly.
func TestSMTPMessageContent(t *testing.T) {
	mb := startMailbox(t)
	cfg := &SMTPConfig{Addr: mb.addr, From: "alerts@llmfence.example", User: "alerts", Password: "s3cret pass",
		TLS: &tls.Config{RootCAs: mb.pool}}
	m := New(nil, Config{SMTP: cfg, Logger: quiet()})
	ctx := context.Background()
	long := strings.Repeat("x", 1500)
	hostile := "model says hi\r\n.\r\nMAIL FROM:<evil@example.org>\r\nBcc: victim@example.org\n日本語のシステムプロンプト " + long
	c := store.Channel{Name: "ops", Kind: "email", Endpoint: "mailto:ops@corp.example", Enabled: true}
	alerts := []Alert{{Rule: RuleHarmfulPrompt, Severity: "critical", Summary: hostile, Host: "127.0.0.5", Port: 11434},
		{Rule: RuleNewModel, Severity: "低", Summary: "second"}}
	if err := m.sendMail(ctx, c, alerts); err != nil {
		t.Fatal(err)
	}
	msgs := mb.messages()
	if len(msgs) != 1 || len(msgs[0].to) != 1 || msgs[0].to[0] != "ops@corp.example" {
		t.Fatalf("received %+v", msgs)
	}
	p := parse(t, msgs[0].data)
	if p.hdr.Get("Bcc") != "" || strings.Contains(p.subj, "\n") || p.subj != "llmfence: 2 alerts" {
		t.Errorf("headers %v subject %q", p.hdr, p.subj)
	}
	want := "model says hi . MAIL FROM:<evil@example.org> Bcc: victim@example.org 日本語のシステムプロンプト " + long
	if !strings.Contains(p.body, want+"\r\n") || !strings.Contains(p.body, "127.0.0.5:11434") || !strings.Contains(p.body, "[低] new model\r\nsecond") {
		t.Errorf("body\n%.400s", p.body)
	}

	// One alert: its rule and severity in the subject.
	if err := m.sendMail(ctx, c, alerts[:1]); err != nil {
		t.Fatal(err)
	}
	if p := parse(t, mb.messages()[1].data); p.subj != "llmfence [CRITICAL] harmful prompt" {
		t.Errorf("subject %q", p.subj)
	}

	// Wrong password: refused, nothing delivered.
	bad := *cfg
	bad.Password = "wrong"
	mb2 := New(nil, Config{SMTP: &bad, Logger: quiet()})
	if err := mb2.sendMail(ctx, c, alerts); err == nil || !strings.Contains(err.Error(), "SMTP login") {
		t.Errorf("wrong password: %v", err)
	}
	// Without trusting the server's certificate: STARTTLS fails.
	untrusted := *cfg
	untrusted.TLS = nil
	if err := New(nil, Config{SMTP: &untrusted, Logger: quiet()}).sendMail(ctx, c, alerts); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("untrusted certificate: %v", err)
	}
	if n := len(mb.messages()); n != 2 {
		t.Errorf("%d messages delivered; want 2", n)
	}
	// A dead server: a clear error within the timeout.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	deadCfg := *cfg
	deadCfg.Addr = dead
	if err := New(nil, Config{SMTP: &deadCfg, Logger: quiet()}).sendMail(ctx, c, alerts); err == nil || !strings.Contains(err.Error(), dead) {
		t.Errorf("dead server: %v", err)
	}
}
