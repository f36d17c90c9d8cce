package alerting

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/store"
)

// SMTPConfig is the mail server alerts are sent through.
type SMTPConfig struct {
	Addr     string // host:port
	From     string
	User     string
	Password string
	// InsecureNoTLS sends without STARTTLS (loopback relays only).
	InsecureNoTLS bool
	// TLS, if set, is the STARTTLS client configuration (a private CA's
	// RootCAs, say); its ServerName defaults to the host of Addr.
	TLS *tls.Config
	// Timeout bounds one delivery's whole conversation (default 30 s).
	Timeout time.Duration
}

func (m *Manager) checkMail(endpoint string) error {
	_, err := m.mailRecipient(endpoint)
	return err
}

// mailRecipient is the bare address of an e-mail channel's endpoint.
func (m *Manager) mailRecipient(endpoint string) (string, error) {
	if m.cfg.SMTP == nil {
		return "", fmt.Errorf("e-mail alerts need an SMTP server (serve --smtp-addr, --smtp-from): %w", store.ErrBadInput)
	}
	addr, ok := strings.CutPrefix(endpoint, "mailto:")
	if !ok {
		return "", fmt.Errorf("an e-mail channel's address is mailto:someone@example.org: %w", store.ErrBadInput)
	}
	a, err := mail.ParseAddress(addr)
	if err != nil {
		return "", fmt.Errorf("e-mail address %q: %v: %w", addr, err, store.ErrBadInput)
	}
	return a.Address, nil
}

// mailMessage writes alerts as one plain-text message (RFC 5322): the
// subject encoded for non-ASCII, the body quoted-printable, so long or
// non-ASCII lines from scanned servers arrive intact.
func mailMessage(from *mail.Address, to string, alerts []Alert, now time.Time) ([]byte, error) {
	subject := "llmfence: " + fmt.Sprint(len(alerts)) + " alerts"
	if len(alerts) == 1 {
		subject = fmt.Sprintf("llmfence [%s] %s", strings.ToUpper(orDash(alerts[0].Severity)), strings.ReplaceAll(alerts[0].Rule, "_", " "))
	}
	var body bytes.Buffer
	qp := quotedprintable.NewWriter(&body)
	for _, a := range alerts {
		// One line per field: a summary from a scanned server could
		// carry line breaks of its own.
		summary := strings.Join(strings.Fields(a.Summary), " ")
		fmt.Fprintf(qp, "[%s] %s\r\n%s\r\n", strings.ToUpper(orDash(a.Severity)), strings.ReplaceAll(a.Rule, "_", " "), summary)
		if a.Host != "" {
			fmt.Fprintf(qp, "%s\r\n", net.JoinHostPort(a.Host, fmt.Sprint(a.Port)))
		}
		if a.Link != "" {
			fmt.Fprintf(qp, "%s\r\n", a.Link)
		}
		qp.Write([]byte("\r\n"))
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := "llmfence.invalid"
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 {
		domain = from.Address[at+1:]
	}
	var msg bytes.Buffer
	h := func(k, v string) { msg.WriteString(k + ": " + v + "\r\n") }
	h("From", from.String())
	h("To", (&mail.Address{Address: to}).String())
	h("Subject", mime.QEncoding.Encode("utf-8", subject))
	h("Date", now.UTC().Format(time.RFC1123Z))
	h("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	h("Auto-Submitted", "auto-generated")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// sendMail sends alerts as one message over SMTP: STARTTLS unless the
// relay is allowed plain text, then AUTH PLAIN when a user is set.
func (m *Manager) sendMail(ctx context.Context, c store.Channel, alerts []Alert) error {
	to, err := m.mailRecipient(c.Endpoint)
	if err != nil {
		return err
	}
	cfg := m.cfg.SMTP
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return fmt.Errorf("sender address %q (serve --smtp-from): %w", cfg.From, err)
	}
	msg, err := mailMessage(from, to, alerts, time.Now())
	if err != nil {
		return err
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("SMTP server %s: %w", cfg.Addr, err)
	}
	// The whole conversation ends with ctx: net/smtp has no context.
	dl, _ := ctx.Deadline()
	conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	host, _, _ := net.SplitHostPort(cfg.Addr)
	cl, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("SMTP server %s: %w", cfg.Addr, err)
	}
	defer cl.Close()
	if !cfg.InsecureNoTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return fmt.Errorf("SMTP server %s offers no STARTTLS (set it up, or allow plain text for a loopback relay)", cfg.Addr)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLS != nil {
			tc = cfg.TLS.Clone()
		}
		if tc.ServerName == "" {
			tc.ServerName = host
		}
		if err := cl.StartTLS(tc); err != nil {
			return fmt.Errorf("SMTP STARTTLS: %w", err)
		}
	}
	if cfg.User != "" {
		if err := cl.Auth(smtp.PlainAuth("", cfg.User, cfg.Password, host)); err != nil {
			return fmt.Errorf("SMTP login: %w", err)
		}
	}
	if err := cl.Mail(from.Address); err != nil {
		return fmt.Errorf("SMTP MAIL FROM: %w", err)
	}
	if err := cl.Rcpt(to); err != nil {
		return fmt.Errorf("SMTP RCPT TO %s: %w", to, err)
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("SMTP DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("SMTP server refused the message: %w", err)
	}
	return cl.Quit()
}
