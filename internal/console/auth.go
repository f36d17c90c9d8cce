package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/scanrun"
	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

// CookieName is the session cookie.
const CookieName = "llmfence_session"

func isUsage(err error) bool {
	var ue *scanrun.UsageError
	return errors.As(err, &ue)
}

// authenticate finds the user of a request: a bearer API token, else the
// session cookie.
func (s *Server) authenticate(r *http.Request) (store.User, *store.Session, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || len(tok) > 256 {
			return store.User{}, nil, errUnauthenticated
		}
		u, err := s.st.UserByAPIToken(r.Context(), users.HashToken(strings.TrimSpace(tok)))
		if err != nil || u.Disabled {
			return store.User{}, nil, errUnauthenticated
		}
		return u, nil, nil
	}
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" || len(ck.Value) > 256 {
		return store.User{}, nil, errUnauthenticated
	}
	hash := users.HashToken(ck.Value)
	se, u, err := s.st.SessionByHash(r.Context(), hash)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			return store.User{}, nil, err
		}
		return store.User{}, nil, errUnauthenticated
	}
	now := time.Now()
	if u.Disabled || now.After(se.ExpiresAt) || now.After(se.CreatedAt.Add(s.cfg.SessionMax)) {
		_ = s.st.DeleteSession(context.WithoutCancel(r.Context()), hash)
		return store.User{}, nil, errUnauthenticated
	}
	// Slide the idle expiry, at most once a minute.
	if now.Sub(se.LastSeen) > time.Minute {
		_ = s.st.TouchSession(r.Context(), hash, now.Add(s.cfg.SessionIdle))
	}
	return u, &se, nil
}

// checkCSRF: a state-changing request made with a session carries the
// session's CSRF token and, if the browser says where it comes from, the
// same origin.
func (s *Server) checkCSRF(r *http.Request, c *call) error {
	if c.session == nil {
		return nil // bearer token: not sent by browsers on their own
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errStatus(http.StatusForbidden, "cross-origin request refused")
		}
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" && !c.api {
		tok = r.PostFormValue("csrf")
	}
	if tok == "" || !users.SameToken(tok, c.session.CSRF) {
		return errStatus(http.StatusForbidden, "missing or wrong CSRF token (reload the page and try again)")
	}
	return nil
}

// startSession signs u in: a new session, its cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User) error {
	tok, hash := users.NewToken("lfs_")
	csrf, _ := users.NewToken("")
	now := time.Now()
	se := store.Session{TokenHash: hash, UserID: u.ID, CSRF: csrf, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionIdle), LastSeen: now}
	if err := s.st.CreateSession(r.Context(), se, remoteIP(r)); err != nil {
		return err
	}
	u.LastLogin = &now
	_ = s.st.UpdateUser(r.Context(), u)
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: tok, Path: "/", HttpOnly: true,
		Secure: s.cfg.CookieSecure || r.TLS != nil, SameSite: http.SameSiteLaxMode, MaxAge: int(s.cfg.SessionMax / time.Second)})
	_ = s.st.Audit(r.Context(), store.AuditEntry{Actor: u.Name, Action: "login", Remote: remoteIP(r)})
	return nil
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, MaxAge: -1,
		Secure: s.cfg.CookieSecure || r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, _ *call) error {
	n, err := s.st.CountUsers(r.Context())
	if err != nil {
		return err
	}
	s.render(w, r, nil, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next")), "NoUsers": n == 0,
		"OIDC": s.cfg.OIDC != nil})
	return nil
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := r.ParseForm(); err != nil {
		return errStatus(http.StatusBadRequest, "bad form")
	}
	u, err := users.Authenticate(r.Context(), s.st, r.PostFormValue("name"), r.PostFormValue("password"))
	if errors.Is(err, users.ErrLogin) {
		_ = s.st.Audit(r.Context(), store.AuditEntry{Actor: r.PostFormValue("name"), Action: "login failed", Remote: remoteIP(r)})
		w.WriteHeader(http.StatusUnauthorized)
		s.render(w, r, nil, "login", map[string]any{"Next": safeNext(r.PostFormValue("next")), "Error": err.Error(), "OIDC": s.cfg.OIDC != nil})
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.startSession(w, r, u); err != nil {
		return err
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, c *call) error {
	if c.session != nil {
		if err := s.st.DeleteSession(r.Context(), c.session.TokenHash); err != nil {
			return err
		}
	}
	s.clearCookie(w, r)
	s.audit(r, c, "logout", "", "")
	if c.api {
		writeJSON(w, http.StatusOK, map[string]string{"status": "signed out"})
		return nil
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// setupPage and setupPost create the first admin with the one-time token
// printed at first start.
func (s *Server) setupPage(w http.ResponseWriter, r *http.Request, _ *call) error {
	s.render(w, r, nil, "setup", map[string]any{})
	return nil
}

func (s *Server) setupPost(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := r.ParseForm(); err != nil {
		return errStatus(http.StatusBadRequest, "bad form")
	}
	fail := func(msg string) error {
		w.WriteHeader(http.StatusBadRequest)
		s.render(w, r, nil, "setup", map[string]any{"Error": msg})
		return nil
	}
	name, pw := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("password")
	if name == "" {
		return fail("give a user name")
	}
	if _, err := users.HashPassword(pw); err != nil {
		return fail(err.Error())
	}
	if err := s.st.UseSetupToken(r.Context(), users.HashToken(strings.TrimSpace(r.PostFormValue("token")))); err != nil {
		return fail("the setup token is unknown, used or expired; see the token printed when llmfence serve started, or run llmfence users create --admin")
	}
	u, err := users.Create(r.Context(), s.st, name, pw, users.RoleAdmin)
	if err != nil {
		return fail(err.Error())
	}
	_ = s.st.Audit(r.Context(), store.AuditEntry{Actor: u.Name, Action: "user created", Object: "user:" + u.Name, Detail: "first admin, by setup token", Remote: remoteIP(r)})
	if err := s.startSession(w, r, u); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
