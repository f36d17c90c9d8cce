package console

import (
	"io"
	"net/http"
	"strings"

	"github.com/llmfence/llmfence/internal/store"
	"github.com/llmfence/llmfence/internal/users"
)

var errNoSchedules = errStatus(http.StatusNotImplemented, "schedules are not enabled on this server")
var errNoAlerts = errStatus(http.StatusNotImplemented, "alerts are not enabled on this server")

func (s *Server) apiSchedules(w http.ResponseWriter, r *http.Request, _ *call) error {
	if s.cfg.Schedules == nil {
		return errNoSchedules
	}
	v, err := s.cfg.Schedules.Schedules(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": v})
	return nil
}

func (s *Server) apiSaveSchedule(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Schedules == nil {
		return errNoSchedules
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return errStatus(http.StatusBadRequest, "request body: %v", err)
	}
	v, err := s.cfg.Schedules.SaveSchedule(r.Context(), body, c.user.Name)
	if err != nil {
		return err
	}
	s.audit(r, c, "schedule saved", "", string(body))
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) apiDeleteSchedule(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Schedules == nil {
		return errNoSchedules
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.cfg.Schedules.DeleteSchedule(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, c, "schedule deleted", "schedule:"+itoa(id), "")
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
	return nil
}

func (s *Server) apiChannels(w http.ResponseWriter, r *http.Request, _ *call) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	v, err := s.cfg.Alerts.Channels(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": v})
	return nil
}

func (s *Server) apiSaveChannel(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return errStatus(http.StatusBadRequest, "request body: %v", err)
	}
	v, err := s.cfg.Alerts.SaveChannel(r.Context(), body, c.user.Name)
	if err != nil {
		return err
	}
	s.audit(r, c, "alert channel saved", "", "")
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) apiTestChannel(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Alerts == nil {
		return errNoAlerts
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.cfg.Alerts.TestChannel(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, c, "alert channel test", "channel:"+itoa(id), "")
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "test ping queued"})
	return nil
}

func (s *Server) apiUsers(w http.ResponseWriter, r *http.Request, _ *call) error {
	us, err := s.st.Users(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": us})
	return nil
}

// UserBody creates a user.
type UserBody struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func (s *Server) apiCreateUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var b UserBody
	if err := decode(r, &b); err != nil {
		return err
	}
	u, err := users.Create(r.Context(), s.st, b.Name, b.Password, b.Role)
	if err != nil {
		if strings.Contains(err.Error(), "password") || strings.Contains(err.Error(), "role") {
			return errStatus(http.StatusBadRequest, "%v", err)
		}
		return err
	}
	s.audit(r, c, "user created", "user:"+u.Name, "role "+u.Role)
	writeJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Server) apiDisclose(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.cfg.Disclose == nil {
		return errStatus(http.StatusNotImplemented, "disclosure reports are not enabled on this server")
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "", "markdown":
		format = "markdown"
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	case "json":
		w.Header().Set("Content-Type", "application/json")
	default:
		return errStatus(http.StatusBadRequest, "format %q: want markdown, csv or json", format)
	}
	run, err := s.st.GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	s.audit(r, c, "disclosure report", "run:"+run.ID, format)
	return s.cfg.Disclose.Disclose(r.Context(), run.ID, r.URL.Query().Get("owner"), format, w)
}

func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request, _ *call) error {
	if s.cfg.OIDC == nil {
		return errStatus(http.StatusNotFound, "single sign-on is not configured")
	}
	return s.cfg.OIDC.Start(w, r)
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request, _ *call) error {
	if s.cfg.OIDC == nil {
		return errStatus(http.StatusNotFound, "single sign-on is not configured")
	}
	u, err := s.cfg.OIDC.Finish(w, r)
	if err != nil {
		_ = s.st.Audit(r.Context(), store.AuditEntry{Actor: "oidc", Action: "login failed", Detail: err.Error(), Remote: remoteIP(r)})
		return errStatus(http.StatusForbidden, "single sign-on refused: %v", err)
	}
	if err := s.startSession(w, r, u); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
