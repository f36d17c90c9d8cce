package console

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/llmfence/llmfence/internal/jobs"
	"github.com/llmfence/llmfence/internal/store"
)

// PathBody registers a path on the serve host for periodic inspection.
type PathBody struct {
	Path       string `json:"path"`
	Kind       string `json:"kind,omitempty"` // files (default) or ollama-store
	EveryHours int    `json:"every_hours,omitempty"`
}

func (s *Server) savePath(r *http.Request, c *call, b PathBody) (store.WatchedPath, error) {
	if b.Path == "" || !filepath.IsAbs(b.Path) {
		return store.WatchedPath{}, errStatus(http.StatusBadRequest, "give an absolute path on the serve host")
	}
	if b.Kind == "" {
		b.Kind = "files"
	}
	if b.EveryHours == 0 {
		b.EveryHours = 24
	}
	p, err := s.st.SavePath(r.Context(), store.WatchedPath{Path: filepath.Clean(b.Path), Kind: b.Kind, EveryHours: b.EveryHours, CreatedBy: c.user.Name})
	if err != nil {
		return p, err
	}
	s.audit(r, c, "path watched", "path:"+p.Path, b.Kind)
	return p, nil
}

func (s *Server) apiPaths(w http.ResponseWriter, r *http.Request, _ *call) error {
	ps, err := s.st.Paths(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ps})
	return nil
}

func (s *Server) apiSavePath(w http.ResponseWriter, r *http.Request, c *call) error {
	var b PathBody
	if err := decode(r, &b); err != nil {
		return err
	}
	p, err := s.savePath(r, c, b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (s *Server) apiDeletePath(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if err := s.st.DeletePath(r.Context(), id); err != nil {
		return err
	}
	s.audit(r, c, "path unwatched", "path:"+itoa(id), "")
	writeJSON(w, http.StatusOK, map[string]string{"status": "deleted"})
	return nil
}

func (s *Server) apiInspectNow(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ps, err := s.st.Paths(r.Context())
	if err != nil {
		return err
	}
	for _, p := range ps {
		if p.ID == id {
			if err := s.eng.Insert(r.Context(), jobs.InspectPathArgs{ID: p.ID, Path: p.Path, PathKind: p.Kind}, nil); err != nil {
				return err
			}
			s.audit(r, c, "inspection queued", "path:"+p.Path, "")
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "inspection queued"})
			return nil
		}
	}
	return errStatus(http.StatusNotFound, "no watched path %d", id)
}

func (s *Server) apiPathResults(w http.ResponseWriter, r *http.Request, _ *call) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	p := page(r)
	items, more, err := s.st.PathResults(r.Context(), id, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, mkList[store.PathResult](items, more, p, nil))
	return nil
}

// pageResults shows watched paths and the results of one of them.
func (s *Server) pageResults(w http.ResponseWriter, r *http.Request, c *call) error {
	ps, err := s.st.Paths(r.Context())
	if err != nil {
		return err
	}
	data := map[string]any{"Paths": ps, "Error": r.URL.Query().Get("error"), "Msg": r.URL.Query().Get("msg")}
	if v := r.URL.Query().Get("path"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errStatus(http.StatusBadRequest, "bad path id")
		}
		res, more, err := s.st.PathResults(r.Context(), id, page(r))
		if err != nil {
			return err
		}
		data["Results"], data["More"], data["PathID"] = res, more, id
	}
	s.render(w, r, c, "results", data)
	return nil
}

func (s *Server) formResults(w http.ResponseWriter, r *http.Request, c *call) error {
	if id := r.PostFormValue("inspect"); id != "" {
		n, _ := strconv.ParseInt(id, 10, 64)
		ps, _ := s.st.Paths(r.Context())
		for _, p := range ps {
			if p.ID == n {
				if err := s.eng.Insert(r.Context(), jobs.InspectPathArgs{ID: p.ID, Path: p.Path, PathKind: p.Kind}, nil); err != nil {
					return err
				}
				s.audit(r, c, "inspection queued", "path:"+p.Path, "")
			}
		}
		http.Redirect(w, r, "/results?msg="+url.QueryEscape("inspection queued"), http.StatusSeeOther)
		return nil
	}
	every, _ := strconv.Atoi(r.PostFormValue("every_hours"))
	if _, err := s.savePath(r, c, PathBody{Path: r.PostFormValue("path"), Kind: r.PostFormValue("kind"), EveryHours: every}); err != nil {
		http.Redirect(w, r, "/results?error="+url.QueryEscape(err.Error()), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/results", http.StatusSeeOther)
	return nil
}
