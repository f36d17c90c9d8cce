package lab

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Fleet is a running set of personas, each on its own loopback address.
type Fleet struct {
	personas []Persona
	hits     map[netip.AddrPort]*HitLog
	servers  []*http.Server
	raw      []net.Listener
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	once     sync.Once
	// cert is the self-signed certificate of the TLS personas.
	cert *x509.Certificate
}

// rawHostile kinds are served on a bare TCP listener from the first byte.
func rawHostile(kind string) bool {
	return kind == HostileTarpit || kind == HostileGarbage || kind == HostileEndlessHeaders
}

// Start listens for every persona on its address and port (loopback only)
// and serves it until Close is called or ctx ends. Personas with TLS sit
// behind a TLS front using one self-signed ECDSA certificate generated in
// memory at start (CN "llmfence-lab"); clients must not verify it.
func Start(ctx context.Context, personas []Persona) (*Fleet, error) {
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	f := &Fleet{
		personas: append([]Persona(nil), personas...),
		hits:     make(map[netip.AddrPort]*HitLog, len(personas)),
		ctx:      fctx,
		cancel:   cancel,
	}
	var tlsCfg *tls.Config
	for i := range f.personas {
		p := &f.personas[i]
		if !p.Addr.Is4() || !loopback.Contains(p.Addr) {
			f.Close()
			return nil, fmt.Errorf("persona %s is not on a 127.0.0.0/8 address: the lab only listens on loopback", p.AddrPort())
		}
		if _, dup := f.hits[p.AddrPort()]; dup {
			f.Close()
			return nil, fmt.Errorf("two personas share %s", p.AddrPort())
		}
		if p.TLS && tlsCfg == nil && !rawHostile(p.Hostile) {
			cfg, cert, err := selfSignedTLS()
			if err != nil {
				f.Close()
				return nil, err
			}
			tlsCfg, f.cert = cfg, cert
		}
	}
	lc := net.ListenConfig{}
	logger := slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug)
	for i := range f.personas {
		if err := ctx.Err(); err != nil {
			f.Close()
			return nil, fmt.Errorf("lab start interrupted: %w", err)
		}
		p := &f.personas[i]
		hl := &HitLog{}
		f.hits[p.AddrPort()] = hl
		ln, err := lc.Listen(ctx, "tcp4", p.AddrPort().String())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lab persona %s (%s) cannot listen: %w", p.AddrPort(), p.Stack, err)
		}
		if rawHostile(p.Hostile) {
			f.raw = append(f.raw, ln)
			f.wg.Add(1)
			go f.serveRaw(ln, p.Hostile, hl)
			continue
		}
		if p.TLS {
			ln = tls.NewListener(ln, tlsCfg)
		}
		srv := &http.Server{
			Handler:           newServer(p, hl, time.Now),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          logger,
			BaseContext:       func(net.Listener) context.Context { return fctx },
		}
		if p.Hostile != "" {
			// Hostile bodies are meant to outlast any sane client.
			srv.WriteTimeout = 0
		}
		f.servers = append(f.servers, srv)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				slog.Debug("lab persona stopped", "addr", ln.Addr().String(), "err", err)
			}
		}()
	}
	context.AfterFunc(ctx, f.Close)
	return f, nil
}

func (f *Fleet) serveRaw(ln net.Listener, kind string, hl *HitLog) {
	defer f.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		hl.record("TCP", "", false)
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			serveRawHostile(f.ctx, c, kind)
		}()
	}
}

// Close stops every persona and waits for their goroutines. It is safe to
// call more than once.
func (f *Fleet) Close() {
	f.once.Do(func() {
		f.cancel()
		for _, srv := range f.servers {
			_ = srv.Close()
		}
		for _, ln := range f.raw {
			_ = ln.Close()
		}
		f.wg.Wait()
	})
}

// Hits returns the requests the persona at ap received (method and path
// with counts). Raw hostile personas record one {"TCP", ""} hit per
// connection. Unknown addresses give nil.
func (f *Fleet) Hits(ap netip.AddrPort) []Hit {
	return f.hits[ap].Hits()
}

// WriteHits returns every write-route request the whole fleet received,
// keyed by persona address; empty when the scanner stayed passive.
func (f *Fleet) WriteHits() map[netip.AddrPort][]Hit {
	out := map[netip.AddrPort][]Hit{}
	for ap, hl := range f.hits {
		if w := hl.Writes(); len(w) > 0 {
			out[ap] = w
		}
	}
	return out
}

// GroundTruth returns a copy of the personas the fleet serves.
func (f *Fleet) GroundTruth() []Persona {
	return append([]Persona(nil), f.personas...)
}

// Certificate is the fleet's self-signed TLS certificate (nil when no
// persona uses TLS).
func (f *Fleet) Certificate() *x509.Certificate { return f.cert }

// GroundTruth is the JSON document WriteGroundTruth emits.
type GroundTruth struct {
	// Format identifies the document; CatalogVersion the persona
	// catalogue the fleet was drawn from.
	Format         string    `json:"format"`
	CatalogVersion int       `json:"catalog_version"`
	Personas       []Persona `json:"personas"`
}

const groundTruthFormat = "llmfence-lab-ground-truth/1"

// WriteGroundTruth writes the personas as an indented JSON document.
func WriteGroundTruth(w io.Writer, ps []Persona) error {
	v, err := CatalogVersion()
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []Persona{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(GroundTruth{Format: groundTruthFormat, CatalogVersion: v, Personas: ps}); err != nil {
		return fmt.Errorf("writing lab ground truth: %w", err)
	}
	return nil
}

// ReadGroundTruth reads a document written by WriteGroundTruth.
func ReadGroundTruth(r io.Reader) ([]Persona, error) {
	var gt GroundTruth
	if err := json.NewDecoder(r).Decode(&gt); err != nil {
		return nil, fmt.Errorf("reading lab ground truth: %w", err)
	}
	if gt.Format != groundTruthFormat {
		return nil, fmt.Errorf("reading lab ground truth: unknown format %q", gt.Format)
	}
	return gt.Personas, nil
}

func selfSignedTLS() (*tls.Config, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("lab TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, fmt.Errorf("lab TLS serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "llmfence-lab", Organization: []string{"llmfence lab"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost", "llmfence-lab"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("lab TLS certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("lab TLS certificate: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		MinVersion:   tls.VersionTLS12,
	}, cert, nil
}
