package guard

import (
	"net/http"
	"strings"
	"testing"
)

func TestTrustedProxies(t *testing.T) {
	gen := `{"model":"tiny","prompt":"x","stream":false}`
	for _, tt := range []struct {
		name     string
		trusted  []string
		deny     []string
		xff      string
		status   int
		clientIP string // in the audit record
		upXFF    string // what the upstream is told
	}{
		{"no trusted proxies: the header is ignored and not passed on", nil, nil,
			"203.0.113.7", 200, "127.0.0.1", "127.0.0.1"},
		{"a trusted peer: the client is the last untrusted hop", []string{"127.0.0.0/8"}, nil,
			"198.51.100.1, 203.0.113.7", 200, "203.0.113.7", "198.51.100.1, 203.0.113.7, 127.0.0.1"},
		{"trusted hops are skipped", []string{"127.0.0.0/8", "192.0.2.0/24"}, nil,
			"203.0.113.7, 192.0.2.10", 200, "203.0.113.7", "203.0.113.7, 192.0.2.10, 127.0.0.1"},
		{"the deny list sees the forwarded client", []string{"127.0.0.1"}, []string{"203.0.113.0/24"},
			"203.0.113.7", http.StatusForbidden, "203.0.113.7", ""},
		{"garbage ends the walk at the nearest trusted hop", []string{"127.0.0.1"}, nil,
			"203.0.113.7, not-an-ip", 200, "127.0.0.1", "203.0.113.7, not-an-ip, 127.0.0.1"},
		{"no header from a trusted peer: the peer", []string{"127.0.0.1"}, nil,
			"", 200, "127.0.0.1", "127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			g := newGateway(t, up, func(o *Options) {
				o.Config.TrustedProxies = tt.trusted
				o.Config.Deny = tt.deny
			})
			hdr := map[string]string{}
			if tt.xff != "" {
				hdr["X-Forwarded-For"] = tt.xff
			}
			resp, _ := g.doWith(t, "POST", "/api/generate", userKey, gen, hdr)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			recs := g.records(t)
			if len(recs) != 1 || recs[0].ClientIP != tt.clientIP {
				t.Errorf("audit client_ip %+v, want %s", recs, tt.clientIP)
			}
			if tt.upXFF != "" {
				hits := up.seen()
				if len(hits) != 1 || hits[0].XFF != tt.upXFF {
					t.Errorf("upstream X-Forwarded-For %+v, want %q", hits, tt.upXFF)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		// An upstream that allows every origin, as OLLAMA_ORIGINS=* does.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"models":[]}`))
	})
	for _, tt := range []struct {
		name, method, path, origin string
		origins                    []string
		key                        string
		status                     int
		acao                       string
		preflight                  bool
	}{
		{"off by default: the upstream's header is removed", "GET", "/api/tags", "https://evil.example", nil, userKey, 200, "", false},
		{"off by default: preflight without grants", "OPTIONS", "/api/chat", "https://app.example", nil, "", 204, "", false},
		{"listed origin: preflight grants", "OPTIONS", "/api/chat", "https://app.example", []string{"https://app.example"}, "", 204, "https://app.example", true},
		{"listed origin: response carries it", "GET", "/api/tags", "https://app.example", []string{"https://app.example"}, userKey, 200, "https://app.example", false},
		{"listed origin: an error carries it too", "GET", "/api/tags", "https://app.example", []string{"https://app.example"}, "", 401, "https://app.example", false},
		{"unlisted origin: nothing", "GET", "/api/tags", "https://evil.example", []string{"https://app.example"}, userKey, 200, "", false},
		{"wildcard", "GET", "/api/tags", "https://any.example", []string{"*"}, userKey, 200, "*", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := newGateway(t, up, func(o *Options) { o.Config.CORSOrigins = tt.origins })
			resp, _ := g.doWith(t, tt.method, tt.path, tt.key, "", map[string]string{"Origin": tt.origin})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Values("Access-Control-Allow-Origin"); strings.Join(got, ",") != tt.acao {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.acao)
			}
			if got := resp.Header.Get("Access-Control-Allow-Headers") != ""; got != tt.preflight {
				t.Errorf("Access-Control-Allow-Headers present: %v, want %v", got, tt.preflight)
			}
		})
	}
	if err := (func() error { c := DefaultConfig(); c.CORSOrigins = []string{"app.example"}; return c.Validate() })(); err == nil {
		t.Error("an origin without a scheme was accepted")
	}
}
