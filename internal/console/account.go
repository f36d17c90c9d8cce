package console

import (
	"net/http"

	"github.com/llmfence/llmfence/internal/store"
)

// Each user's own settings: the dashboard's language. Every role may
// change its own; the change is in the audit trail.

func (s *Server) pageAccount(w http.ResponseWriter, r *http.Request, c *call) error {
	s.render(w, r, c, "account", map[string]any{"Msg": r.URL.Query().Get("msg")})
	return nil
}

// setLang stores the user's language ("" follows the browser).
func (s *Server) setLang(r *http.Request, c *call, value string) (store.User, error) {
	lang, err := parseUserLang(value)
	if err != nil {
		return c.user, err
	}
	u, err := s.st.UserByID(r.Context(), c.user.ID)
	if err != nil {
		return c.user, err
	}
	if u.Lang != lang {
		u.Lang = lang
		if err := s.st.UpdateUser(r.Context(), u); err != nil {
			return c.user, err
		}
		shown := lang
		if shown == "" {
			shown = "browser"
		}
		s.audit(r, c, "language set", "user:"+u.Name, shown)
	}
	c.user = u
	return u, nil
}

func (s *Server) formAccount(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := s.setLang(r, c, r.PostFormValue("lang")); err != nil {
		return err
	}
	http.Redirect(w, r, "/account?msg=lang_saved", http.StatusSeeOther)
	return nil
}

// MeChange is the body of PATCH /api/me.
type MeChange struct {
	Lang *string `json:"lang"`
}

func (s *Server) apiMeChange(w http.ResponseWriter, r *http.Request, c *call) error {
	var b MeChange
	if err := decode(r, &b); err != nil {
		return err
	}
	if b.Lang == nil {
		return errText(http.StatusBadRequest, "console.error.lang_missing")
	}
	u, err := s.setLang(r, c, *b.Lang)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}
