package alerting

import (
	"context"
	"crypto/tls"
	"fmt"
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
}

func (m *Manager) checkMail(endpoint string) error {
	if m.cfg.SMTP == nil {
		return fmt.Errorf("e-mail alerts need an SMTP server (serve --smtp-addr, --smtp-from): %w", store.ErrBadInput)
	}
	addr, ok := strings.CutPrefix(endpoint, "mailto:")
	if !ok {
		return fmt.Errorf("an e-mail channel's address is mailto:someone@example.org: %w", store.ErrBadInput)
	}
	if _, err := mail.ParseAddress(addr); err != nil {
		return fmt.Errorf("e-mail address %q: %v: %w", addr, err, store.ErrBadInput)
	}
	return nil
}

// sendMail sends alerts as one plain-text message.
func (m *Manager) sendMail(ctx context.Context, c store.Channel, alerts []Alert) error {
	if err := m.checkMail(c.Endpoint); err != nil {
		return err
	}
	to := strings.TrimPrefix(c.Endpoint, "mailto:")
	cfg := m.cfg.SMTP
	subject := "llmfence: " + fmt.Sprint(len(alerts)) + " alerts"
	if len(alerts) == 1 {
		subject = fmt.Sprintf("llmfence [%s] %s", strings.ToUpper(orDash(alerts[0].Severity)), strings.ReplaceAll(alerts[0].Rule, "_", " "))
	}
	var body strings.Builder
	for _, a := range alerts {
		fmt.Fprintf(&body, "[%s] %s\r\n%s\r\n", strings.ToUpper(orDash(a.Severity)), strings.ReplaceAll(a.Rule, "_", " "), a.Summary)
		if a.Link != "" {
			fmt.Fprintf(&body, "%s\r\n", a.Link)
		}
		body.WriteString("\r\n")
	}
	msg := "From: " + cfg.From + "\r\nTo: " + to + "\r\nSubject: " + subject + "\r\nDate: " + time.Now().UTC().Format(time.RFC1123Z) +
		"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body.String()
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("SMTP server %s: %w", cfg.Addr, err)
	}
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
		if err := cl.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("SMTP STARTTLS: %w", err)
		}
	}
	if cfg.User != "" {
		if err := cl.Auth(smtp.PlainAuth("", cfg.User, cfg.Password, host)); err != nil {
			return fmt.Errorf("SMTP login: %w", err)
		}
	}
	if err := cl.Mail(cfg.From); err != nil {
		return err
	}
	if err := cl.Rcpt(to); err != nil {
		return err
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}
