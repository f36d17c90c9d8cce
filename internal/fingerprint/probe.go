package fingerprint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/version"
)

// ErrNotHTTP means the endpoint gave no valid HTTP response, neither in
// plain text nor over TLS.
var ErrNotHTTP = errors.New("endpoint does not speak HTTP")

// CORSProbeOrigin is the foreign Origin sent to test cross-origin access:
// service.CORSProbeOrigin, which the judge (internal/risk) reads too.
const CORSProbeOrigin = service.CORSProbeOrigin

// Options configure a Prober. Zero values take the defaults.
type Options struct {
	Timeout      time.Duration // per request; default service.DefaultTimeout (3s)
	TargetBudget time.Duration // whole target; default service.DefaultTargetBudget (30s)
	MaxBody      int64         // per response body, after decompression; default 2 MiB
	MaxModels    int           // models enriched per target; default 256
	// UserAgent overrides the User-Agent entirely [version.UserAgent].
	UserAgent string
	// Contact (an URL or e-mail) is added to the default User-Agent.
	Contact string
	// Active allows one benign generation to confirm strangers may use the
	// model API. Without it nothing that generates or changes state is sent.
	Active bool
	Logger *slog.Logger
	// Catalog overrides the embedded fingerprint catalogue.
	Catalog *Catalog
}

func (o Options) withDefaults() (Options, error) {
	if o.Timeout < 0 || o.TargetBudget < 0 || o.MaxBody < 0 || o.MaxModels < 0 {
		return o, errors.New("fingerprint options: timeouts and limits must not be negative")
	}
	if o.Timeout == 0 {
		o.Timeout = service.DefaultTimeout
	}
	if o.TargetBudget == 0 {
		o.TargetBudget = service.DefaultTargetBudget
	}
	if o.MaxBody == 0 {
		o.MaxBody = 2 << 20
	}
	if o.MaxModels == 0 {
		o.MaxModels = 256
	}
	if o.UserAgent == "" {
		o.UserAgent = version.UserAgent(o.Contact)
	}
	if strings.ContainsAny(o.UserAgent, "\r\n") {
		return o, errors.New("fingerprint options: User-Agent must be one line")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// Prober fingerprints endpoints. It is safe for concurrent use; every Probe
// keeps its own connections and closes them when done.
type Prober struct {
	opts Options
	cat  *Catalog
	now  func() time.Time
}

// New returns a Prober with opts (defaults filled in).
func New(opts Options) (*Prober, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cat := o.Catalog
	if cat == nil {
		if cat, err = LoadCatalog(); err != nil {
			return nil, err
		}
	}
	return &Prober{opts: o, cat: cat, now: time.Now}, nil
}

// Catalog returns the fingerprint catalogue in use.
func (p *Prober) Catalog() *Catalog { return p.cat }

// stats describes what one probe cost; tests use it.
type stats struct {
	BytesRead int64
	Requests  int64
}

// Probe fingerprints addr. conn, if non-nil, is an already-connected TCP
// connection to addr used for the first request; Probe takes ownership and
// closes it. hostname ("" or the user's name for the host) is sent as Host
// header and TLS SNI. tlsHint says the user asked for https.
//
// The returned Service has Product "http" for HTTP services the catalogue
// does not know. An endpoint that gives no valid HTTP response yields a nil
// Service and an error wrapping ErrNotHTTP. Problems after identification
// are recorded in Service.Error, not returned.
func (p *Prober) Probe(ctx context.Context, addr netip.AddrPort, hostname string, tlsHint bool, conn net.Conn) (*service.Service, error) {
	s, _, err := p.probe(ctx, addr, hostname, tlsHint, conn)
	return s, err
}

var tlsRequiredRE = regexp.MustCompile(`(?i)(plain HTTP request was sent to HTTPS port|sent an HTTP request to an HTTPS server|speaking plain HTTP to an SSL-enabled server|This combination of host and port requires TLS)`)

func (p *Prober) probe(ctx context.Context, addr netip.AddrPort, hostname string, tlsHint bool, conn net.Conn) (*service.Service, stats, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opts.TargetBudget)
	defer cancel()
	log := p.opts.Logger.With("target", addr.String())
	t := newTarget(&p.opts, addr, hostname, conn, log)
	defer t.close()
	st := func() stats { return stats{BytesRead: t.bytesRead.Load(), Requests: t.requests.Load()} }

	first, err := p.firstResponse(ctx, t, tlsHint)
	if err != nil {
		return nil, st(), err
	}
	s := p.newService(t, first)
	if prod, rule := p.identify(ctx, t); prod != nil {
		p.describeProduct(ctx, t, s, prod, rule)
	} else {
		p.describeUnidentified(ctx, t, s, first)
	}
	finish(ctx, s, t)
	return s, st(), nil
}

// rootRequest is the first request of every probe.
var rootRequest = Request{Method: http.MethodGet, Path: "/"}

// firstResponse asks for / in plain HTTP and over TLS (TLS first when the
// user asked for https or the port is 443) and settles the target on the
// scheme that answered. An endpoint that answers neither way is not HTTP.
func (p *Prober) firstResponse(ctx context.Context, t *target, tlsHint bool) (*Response, error) {
	order := []bool{false, true}
	if tlsHint || t.addr.Port() == 443 {
		order = []bool{true, false}
	}
	var first *Response
	var firstErr error
	var firstTLS bool
	for _, useTLS := range order {
		t.setScheme(useTLS)
		r := t.fetch(ctx, rootRequest)
		if r.OK() {
			if !useTLS && r.Status == http.StatusBadRequest && tlsRequiredRE.Match(r.Body) && first == nil {
				first, firstTLS = r, useTLS // keep, but try TLS
				continue
			}
			first, firstTLS = r, useTLS
			break
		}
		if firstErr == nil {
			firstErr = r.Err
		}
		if ctx.Err() != nil || isTimeout(r.Err) || errors.Is(r.Err, syscall.ECONNREFUSED) || errors.Is(r.Err, errSpokeFirst) {
			break // a tarpit, a banner protocol or a closed port; TLS would not help
		}
	}
	if first == nil {
		return nil, fmt.Errorf("fingerprinting %s: %w (%v)", t.addr, ErrNotHTTP, firstErr)
	}
	if t.useTLS != firstTLS {
		t.setScheme(firstTLS)
		t.mu.Lock()
		t.cache[rootRequest.Key()] = first
		t.mu.Unlock()
	}
	return first, nil
}

// newService starts the record of the endpoint t from its first response.
func (p *Prober) newService(t *target, first *Response) *service.Service {
	s := &service.Service{
		Host:     t.addr.Addr().Unmap().String(),
		Hostname: t.hostname,
		Port:     int(t.addr.Port()),
		URL:      t.baseURL(),
		Auth:     service.AuthUnknown,
		TLS:      t.useTLS,
		Models:   []service.Model{},
		Findings: []service.Finding{},
		Extra:    map[string]any{},
	}
	s.ScannedAt = p.now().UTC()
	s.ServerHeader = clean(first.Header.Get("Server"), 128)
	if t.useTLS {
		recordTLS(s, t)
	}
	return s
}

// describeUnidentified records an HTTP service no fingerprint matched: a
// login wall shows nothing of what is behind it, but the OpenAI model list
// most of these servers expose (already fetched while identifying, so
// usually no extra request) tells whether it demands credentials, and the
// refusal may name a known gateway.
func (p *Prober) describeUnidentified(ctx context.Context, t *target, s *service.Service, first *Response) {
	s.Product = "http"
	s.Evidence = append(s.Evidence, fmt.Sprintf("GET / → %d %s; no LLM fingerprint matched", first.Status, snippet(first.Body, 60)))
	models := Request{Method: http.MethodGet, Path: "/v1/models"}
	rs := []*Response{first, t.fetch(ctx, models)}
	for _, r := range rs {
		if r.OK() && (r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden) {
			s.Auth = service.AuthRequired
			break
		}
	}
	p.recogniseGateway(s, []Request{rootRequest, models}, rs)
	p.checkCORS(ctx, t, s, rootRequest)
}

// describeProduct records what an identified product shows: its version,
// whether its model API needs credentials, whether model management is
// open, what it allows cross-origin, then the product's own enrichment
// (models, prompts, ...) and, when allowed, one benign generation.
func (p *Prober) describeProduct(ctx context.Context, t *target, s *service.Service, prod *Product, rule *Rule) {
	s.Product = prod.ID
	s.Evidence = append(s.Evidence, ruleEvidence(ctx, t, prod, rule)...)
	readVersion(ctx, t, s, prod)
	authReq := p.readAuth(ctx, t, s, prod)
	readManagement(ctx, t, s, prod)
	p.checkCORS(ctx, t, s, authReq)
	if enrich := enrichers[prod.ID]; enrich != nil {
		enrich(ctx, p, t, s)
	} else {
		enrichOpenAI(ctx, p, t, s)
	}
	if p.opts.Active {
		activeGenerate(ctx, prod, t, s)
	}
}

// readVersion takes the first version the product's extractors find.
func readVersion(ctx context.Context, t *target, s *service.Service, prod *Product) {
	for i := range prod.Version {
		e := &prod.Version[i]
		if v := e.extract(t.fetch(ctx, e.Request)); v != "" {
			s.Version = v
			s.Evidence = append(s.Evidence, fmt.Sprintf("%s → version %q", e.Request, v))
			return
		}
	}
}

// readAuth decides from the product's model API whether it needs
// credentials, and returns the request that told (/ without an auth rule).
func (p *Prober) readAuth(ctx context.Context, t *target, s *service.Service, prod *Product) Request {
	if prod.Auth == nil {
		return rootRequest
	}
	authReq := prod.Auth.Request
	r := t.fetch(ctx, authReq)
	s.Auth = decideAuth(prod.Auth, r)
	status := "no response"
	if r.OK() {
		status = fmt.Sprint(r.Status)
	}
	s.Evidence = append(s.Evidence, fmt.Sprintf("auth %s: model API %s → %s", s.Auth, authReq, status))
	if s.Auth == service.AuthRequired {
		p.recogniseGateway(s, []Request{authReq}, []*Response{r})
	}
	return authReq
}

// readManagement marks model management open when one of the product's
// read-only management checks shows it.
func readManagement(ctx context.Context, t *target, s *service.Service, prod *Product) {
	for i := range prod.Management {
		m := &prod.Management[i]
		r := t.fetch(ctx, m.Request)
		if matchAll(m.Match, r) {
			s.ManagementOpen = true
			s.Evidence = append(s.Evidence, strings.ReplaceAll(m.Note, "{status}", fmt.Sprint(r.Status)))
			return
		}
		if r.OK() {
			s.Evidence = append(s.Evidence, fmt.Sprintf("%s → %d: management routes not shown open", m.Request, r.Status))
		}
	}
}

// recogniseGateway records the first catalogue gateway whose rule holds on
// one of the refusals rs (answers to reqs) as the service's gateway: the
// front that refused the anonymous request. The credential scheme it asked
// for, when it said, goes to Extra["gateway_auth"].
func (p *Prober) recogniseGateway(s *service.Service, reqs []Request, rs []*Response) {
	for i, r := range rs {
		if !r.OK() || r.Status < 400 {
			continue
		}
		for gi := range p.cat.Gateways {
			g := &p.cat.Gateways[gi]
			for ri := range g.Rules {
				if !matchAll(g.Rules[ri].Match, r) {
					continue
				}
				s.Gateway = g.ID
				s.Auth = service.AuthRequired
				note := fmt.Sprintf("%s → %d: %s refused the anonymous request (gateway rule %q)", reqs[i], r.Status, g.Name, g.Rules[ri].Name)
				if scheme := challengeScheme(r.Header.Get("WWW-Authenticate")); scheme != "" {
					s.Extra["gateway_auth"] = scheme
					note += "; it asks for " + scheme + " credentials"
				}
				s.Evidence = append(s.Evidence, note)
				return
			}
		}
	}
}

// challengeScheme is the lower-case scheme of a WWW-Authenticate challenge
// ("basic", "bearer", ...), or "" when there is none or it is not a token.
func challengeScheme(h string) string {
	h = strings.TrimSpace(h)
	if i := strings.IndexAny(h, " \t,"); i >= 0 {
		h = h[:i]
	}
	if h == "" || len(h) > 32 {
		return ""
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return ""
		}
	}
	return strings.ToLower(h)
}

func finish(ctx context.Context, s *service.Service, t *target) {
	if ctx.Err() != nil && s.Error == "" {
		s.Error = "target budget spent before the scan finished; the record may be incomplete"
	}
	if len(s.Extra) == 0 {
		s.Extra = nil
	}
}

// identify tries the catalogue's products in order and returns the first
// whose rule holds, or nil.
func (p *Prober) identify(ctx context.Context, t *target) (*Product, *Rule) {
	specific, fallback := p.cat.ordered(t.addr.Port())
	for _, group := range [][]*Product{specific, fallback} {
		for _, prod := range group {
			for j := range prod.Rules {
				if ctx.Err() != nil || t.failing() {
					return nil, nil
				}
				if evalRule(ctx, t, &prod.Rules[j]) {
					return prod, &prod.Rules[j]
				}
			}
		}
	}
	return nil, nil
}

func evalRule(ctx context.Context, t *target, r *Rule) bool {
	for i := range r.Checks {
		c := &r.Checks[i]
		if !matchAll(c.Match, t.fetch(ctx, c.Request)) {
			return false
		}
	}
	return true
}

func ruleEvidence(ctx context.Context, t *target, prod *Product, rule *Rule) []string {
	out := []string{fmt.Sprintf("identified as %s by fingerprint rule %q", prod.ID, rule.Name)}
	for i := range rule.Checks {
		r := t.fetch(ctx, rule.Checks[i].Request)
		out = append(out, fmt.Sprintf("%s → %s", rule.Checks[i].Request, statusText(r)))
	}
	return out
}

func statusText(r *Response) string {
	if !r.OK() {
		return "no response"
	}
	if len(r.Body) == 0 {
		return fmt.Sprint(r.Status)
	}
	return fmt.Sprintf("%d %s", r.Status, snippet(r.Body, 80))
}

var loginRE = regexp.MustCompile(`(?i)(login|log-in|signin|sign-in|auth|sso|oauth)`)
var passwordFieldRE = regexp.MustCompile(`(?i)<input[^>]+type\s*=\s*["']?password`)

// decideAuth applies the product's explicit auth rules, then the default
// reading of the model API's answer.
func decideAuth(spec *AuthSpec, r *Response) service.Auth {
	if !r.OK() {
		return service.AuthUnknown
	}
	for _, ar := range spec.Rules {
		if matchAll(ar.Match, r) {
			return service.Auth(ar.Result)
		}
	}
	return defaultAuth(r)
}

func defaultAuth(r *Response) service.Auth {
	switch {
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status == http.StatusProxyAuthRequired:
		return service.AuthRequired
	case r.Status >= 300 && r.Status < 400 && loginRE.MatchString(r.Header.Get("Location")):
		return service.AuthRequired
	case r.Status >= 200 && r.Status < 300:
		if ct := r.Header.Get("Content-Type"); strings.Contains(ct, "html") && passwordFieldRE.Match(r.Body) {
			return service.AuthRequired
		}
		return service.AuthNone
	}
	return service.AuthUnknown
}

// checkCORS sends one request with a foreign Origin and records what the
// service allows.
func (p *Prober) checkCORS(ctx context.Context, t *target, s *service.Service, req Request) {
	if req.Method != http.MethodGet {
		req = Request{Method: http.MethodGet, Path: "/"}
	}
	r := t.do(ctx, req, http.Header{"Origin": {CORSProbeOrigin}})
	if !r.OK() {
		return
	}
	if v := r.Header.Get("Access-Control-Allow-Origin"); v != "" {
		s.CORS = clean(v, 256)
		s.Evidence = append(s.Evidence, fmt.Sprintf("%s with Origin %s → Access-Control-Allow-Origin: %s", req, CORSProbeOrigin, s.CORS))
	}
}

func recordTLS(s *service.Service, t *target) {
	t.mu.Lock()
	st := t.tlsState
	t.mu.Unlock()
	if st == nil || len(st.PeerCertificates) == 0 {
		return
	}
	c := st.PeerCertificates[0]
	s.Extra["tls_subject"] = clean(c.Subject.String(), 512)
	s.Extra["tls_issuer"] = clean(c.Issuer.String(), 512)
	s.Extra["tls_not_after"] = c.NotAfter.UTC().Format(time.RFC3339)
	if len(c.DNSNames) > 0 {
		names := make([]string, 0, len(c.DNSNames))
		for i, n := range c.DNSNames {
			if i == 32 {
				break
			}
			names = append(names, clean(n, 253))
		}
		s.Extra["tls_dns_names"] = names
	}
	s.Extra["tls_self_signed"] = c.CheckSignatureFrom(c) == nil && c.Subject.String() == c.Issuer.String()
}

func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}
