package guard

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Certificate rotation without a restart.
//
// The TLS listener takes its certificate from a certReloader: every
// handshake reads the current certificate (tls.Config.GetCertificate) and,
// when client certificates are required, the whole per-handshake
// configuration with the client CA pool (tls.Config.GetConfigForClient)
// through an atomic pointer. A reload swaps the pointer, so handshakes after
// it see the new files while connections already open keep the session they
// negotiated. The files are re-read on every configuration reload (SIGHUP,
// a changed --config file) and when their modification time or size
// changes (polled with the config file). A read that fails (a missing file,
// a certificate that does not match its key, a bundle without
// certificates) keeps the running certificate and logs an error; the next
// change of the files is tried again.

// serverNextProtos is the ALPN list net/http's ServeTLS advertises by
// default (Serve leaves HTTP/2 on). The per-handshake configuration
// returned by GetConfigForClient replaces the listener's whole, so it must
// carry the same list.
func serverNextProtos() []string { return []string{"h2", "http/1.1"} }

// fileStamp is what polling compares: modification time and size.
type fileStamp struct {
	mod  int64 // UnixNano
	size int64
	err  bool // the file could not be stat'ed
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{err: true}
	}
	return fileStamp{mod: fi.ModTime().UnixNano(), size: fi.Size()}
}

// tlsStamps are the stamps of the certificate, key and client CA files.
type tlsStamps [3]fileStamp

func stampTLSFiles(f TLSFiles) tlsStamps {
	return tlsStamps{stampOf(f.Cert), stampOf(f.Key), stampOf(f.ClientCA)}
}

// certState is one reading of the TLS files. It is never modified once
// published.
type certState struct {
	files  TLSFiles
	cert   *tls.Certificate
	leaf   *x509.Certificate
	caPEM  []byte
	client *tls.Config // per-handshake config with the client CA pool; nil without a client CA
}

// certReloader serves the current certState and re-reads the files.
type certReloader struct {
	log *slog.Logger
	cur atomic.Pointer[certState]

	mu sync.Mutex // serialises reloads
	// seen are the stamps of cur's files when they were last read (or
	// tried): polling re-reads only when they change again.
	seen tlsStamps
}

// newCertReloader reads the files once; an error means TLS cannot start.
func newCertReloader(files TLSFiles, log *slog.Logger) (*certReloader, error) {
	if err := files.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stamps := stampTLSFiles(files)
	st, err := loadCertState(files)
	if err != nil {
		return nil, err
	}
	r := &certReloader{log: log, seen: stamps}
	r.cur.Store(st)
	warnExpired(log, st)
	return r, nil
}

// loadCertState reads the certificate, key and client CA bundle.
func loadCertState(files TLSFiles) (*certState, error) {
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return nil, fmt.Errorf("tls: loading certificate %s and key %s: %w", files.Cert, files.Key, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tls: parsing certificate %s: %w", files.Cert, err)
		}
	}
	st := &certState{files: files, cert: &cert, leaf: leaf}
	if files.ClientCA != "" {
		pem, err := os.ReadFile(files.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tls: reading client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA bundle %s holds no PEM certificate", files.ClientCA)
		}
		st.caPEM = pem
		st.client = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			ClientCAs:    pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			NextProtos:   serverNextProtos(),
		}
	}
	return st, nil
}

// serverConfig is the listener's tls.Config: it asks the reloader for the
// certificate (and, with a client CA, for the handshake config) each time.
func (r *certReloader) serverConfig() *tls.Config {
	st := r.cur.Load()
	c := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.getCertificate,
		NextProtos:     serverNextProtos(),
	}
	if st.client != nil {
		// The pool here only describes the listener (it is what a
		// handshake would use if GetConfigForClient returned nil); every
		// handshake gets the current one from GetConfigForClient.
		c.ClientCAs = st.client.ClientCAs
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.GetConfigForClient = r.configForClient
	}
	return c
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load().cert, nil
}

func (r *certReloader) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	return r.cur.Load().client, nil
}

// files are the paths of the certificate in use.
func (r *certReloader) files() TLSFiles { return r.cur.Load().files }

// reload re-reads files (the running paths or new ones). On error the
// running certificate stays and the error is logged and returned.
func (r *certReloader) reload(files TLSFiles, trigger string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(files, trigger)
}

// poll re-reads the running files when their stamps changed since they
// were last read; it reports whether it tried.
func (r *certReloader) poll(trigger string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	files := r.cur.Load().files
	if stampTLSFiles(files) == r.seen {
		return false
	}
	r.reloadLocked(files, trigger)
	return true
}

func (r *certReloader) reloadLocked(files TLSFiles, trigger string) error {
	old := r.cur.Load()
	// Stamp before reading: a change during the read shows at the next poll.
	stamps := stampTLSFiles(files)
	st, err := loadCertState(files)
	if err == nil && (files.ClientCA == "") != (old.files.ClientCA == "") {
		err = errors.New("tls: turning client certificates on or off needs a restart")
	}
	if err != nil {
		if files == old.files {
			r.seen = stamps // the same broken files are not tried again until they change
		}
		r.log.Error("TLS certificate reload failed; keeping the running certificate",
			"trigger", trigger, "cert", files.Cert, "err", err)
		return err
	}
	r.seen = stamps
	r.cur.Store(st)
	certChanged := !bytes.Equal(old.cert.Certificate[0], st.cert.Certificate[0])
	caChanged := !bytes.Equal(old.caPEM, st.caPEM)
	if !certChanged && !caChanged && files == old.files {
		r.log.Debug("TLS files re-read; unchanged", "trigger", trigger)
		return nil
	}
	attrs := []any{"trigger", trigger, "cert", files.Cert, "subject", st.leaf.Subject.String(),
		"serial", st.leaf.SerialNumber.String(), "not_after", st.leaf.NotAfter.UTC().Format(time.RFC3339)}
	if files.ClientCA != "" {
		attrs = append(attrs, "client_ca", files.ClientCA, "client_ca_changed", caChanged)
	}
	r.log.Info("TLS certificate reloaded", attrs...)
	warnExpired(r.log, st)
	return nil
}

// warnExpired says so when the certificate is outside its validity period:
// it is served anyway (clients will refuse it), since the operator put it
// there.
func warnExpired(log *slog.Logger, st *certState) {
	now := time.Now()
	if now.After(st.leaf.NotAfter) || now.Before(st.leaf.NotBefore) {
		log.Warn("the TLS certificate is not valid now", "cert", st.files.Cert,
			"not_before", st.leaf.NotBefore.UTC().Format(time.RFC3339),
			"not_after", st.leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}
