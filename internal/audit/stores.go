package audit

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// Limits of the store walker. Sizes come from file metadata (lstat/stat);
// no model file is opened. Ollama manifests and config blobs (small JSON)
// are the only files read.
const (
	defaultMaxEntries = 500_000 // directory entries looked at per store
	maxStoreDepth     = 16      // directory levels below the store
	maxManifests      = 20_000  // Ollama manifests read per store
	maxConfigBlob     = 64 << 10
	largestShown      = 5
	writableShown     = 5
)

// ModelSize is one model of a store and the bytes it takes.
type ModelSize struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

// storeScan is what walking one store found.
type storeScan struct {
	models   int
	bytes    int64
	perModel map[string]int64
	cloud    []string // Ollama models forwarded to a cloud provider
	writable []string // paths other users may write
	nWrite   int
	owner    int
	notes    []service.Message
	complete bool
}

// note notes a message of the audit's (see say.go).
func (s *storeScan) note(id string, kv ...string) {
	s.notes = append(s.notes, msg(id, kv...))
}

func (s *storeScan) largest() []ModelSize {
	out := make([]ModelSize, 0, len(s.perModel))
	for n, b := range s.perModel {
		out = append(out, ModelSize{Name: n, Bytes: b})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > largestShown {
		out = out[:largestShown]
	}
	return out
}

// walker walks a store without following a symbolic link into a directory
// it has already walked (loops, aliases) and counts every file once.
type walker struct {
	ctx        context.Context
	root       string
	maxEntries int
	entries    int
	dirs       map[fileID]bool
	files      map[fileID]bool
	scan       *storeScan
	stopped    bool
}

// file is one regular file the walker met: its path relative to the store
// and its size (of the link's target for a symbolic link).
type file struct {
	rel  string
	size int64
}

func newWalker(ctx context.Context, root string, maxEntries int, scan *storeScan) *walker {
	if maxEntries <= 0 {
		maxEntries = defaultMaxEntries
	}
	return &walker{ctx: ctx, root: root, maxEntries: maxEntries, dirs: map[fileID]bool{}, files: map[fileID]bool{}, scan: scan}
}

// checkWritable records a path other users can write: world-writable,
// except a sticky directory (where others may not replace what is not
// theirs).
func (w *walker) checkWritable(p string, fi fs.FileInfo) {
	m := fi.Mode()
	if m&0o002 == 0 || (fi.IsDir() && m&fs.ModeSticky != 0) || m&fs.ModeSymlink != 0 {
		return
	}
	w.scan.nWrite++
	if len(w.scan.writable) < writableShown {
		w.scan.writable = append(w.scan.writable, p)
	}
}

// walk visits dir (rel below the store) and calls fn for every regular
// file, once per file.
func (w *walker) walk(dir, rel string, depth int, fn func(f file)) {
	if w.stopped {
		return
	}
	if depth > maxStoreDepth {
		w.scan.note("audit.note.too_deep", "path", filepath.Join(w.root, rel), "max", strconv.Itoa(maxStoreDepth))
		w.scan.complete = false
		return
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		w.scan.note("audit.note.unread_path", args([]string{"path", dir}, reason("reason", errText(err)))...)
		w.scan.complete = false
		return
	}
	for _, e := range ents {
		if w.entries++; w.entries > w.maxEntries {
			w.scan.note("audit.note.walk_stopped", "n", strconv.Itoa(w.maxEntries))
			w.scan.complete, w.stopped = false, true
			return
		}
		if w.entries%1024 == 0 && w.ctx.Err() != nil {
			w.scan.note("audit.note.walk_interrupted")
			w.scan.complete, w.stopped = false, true
			return
		}
		p := filepath.Join(dir, e.Name())
		r := filepath.Join(rel, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			if !gone(err) {
				w.scan.note("audit.note.unread_path", args([]string{"path", p}, reason("reason", errText(err)))...)
				w.scan.complete = false
			}
			continue
		}
		w.checkWritable(p, fi)
		if fi.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Stat(p)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // a dangling link holds nothing
				}
				w.scan.note("audit.note.unfollowed", args([]string{"path", p}, reason("reason", errText(err)))...)
				continue
			}
			fi = t
			w.checkWritable(p, t)
		}
		switch {
		case fi.IsDir():
			id, ok := idOf(fi)
			if ok && w.dirs[id] {
				w.scan.note("audit.note.counted", "path", p)
				continue
			}
			if ok {
				w.dirs[id] = true
			}
			w.walk(p, r, depth+1, fn)
		case fi.Mode().IsRegular():
			if id, ok := idOf(fi); ok {
				if w.files[id] {
					continue
				}
				w.files[id] = true
			}
			w.scan.bytes += fi.Size()
			fn(file{rel: filepath.ToSlash(r), size: fi.Size()})
		}
	}
}

// scanStore walks one store of the given kind at path (as the audit opens
// it) and sums it up.
func scanStore(ctx context.Context, kind *StoreSpec, path string, maxEntries int) *storeScan {
	s := &storeScan{perModel: map[string]int64{}, complete: true, owner: -1}
	fi, err := os.Stat(path)
	if err != nil {
		s.note("audit.note.unread_path", args([]string{"path", path}, reason("reason", errText(err)))...)
		s.complete = false
		return s
	}
	if uid, ok := ownerOf(fi); ok {
		s.owner = uid
	}
	w := newWalker(ctx, path, maxEntries, s)
	if id, ok := idOf(fi); ok {
		w.dirs[id] = true
	}
	w.checkWritable(path, fi)
	checkParents(path, w)
	switch kind.Layout {
	case layoutOllama:
		scanOllama(w, path)
	case layoutHuggingFace:
		w.walk(path, "", 0, func(f file) {
			top, _, _ := strings.Cut(f.rel, "/")
			if name, ok := strings.CutPrefix(top, "models--"); ok {
				s.perModel[strings.ReplaceAll(name, "--", "/")] += f.size
			}
		})
		s.models = len(s.perModel)
	case layoutTree:
		w.walk(path, "", 0, func(f file) {
			parts := strings.Split(f.rel, "/")
			if len(parts) < 3 || !hasExt(f.rel, kind.ModelExt) {
				return
			}
			s.perModel[parts[0]+"/"+parts[1]] += f.size
		})
		s.models = len(s.perModel)
	case layoutFiles:
		w.walk(path, "", 0, func(f file) {
			if hasExt(f.rel, kind.ModelExt) {
				s.perModel[f.rel] += f.size
			}
		})
		s.models = len(s.perModel)
	}
	return s
}

// checkParents records parent directories other users can write: whoever
// can write a parent can replace the whole store.
func checkParents(path string, w *walker) {
	for p := filepath.Dir(path); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil {
			w.checkWritable(p, fi)
		}
		if p == filepath.Dir(p) {
			return
		}
	}
}

func hasExt(name string, exts []string) bool {
	l := strings.ToLower(name)
	for _, e := range exts {
		if strings.HasSuffix(l, strings.ToLower(e)) {
			return true
		}
	}
	return false
}

// ollamaManifest is the part of an Ollama manifest the audit reads.
type ollamaManifest struct {
	Config *struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
	} `json:"config"`
	Layers []struct {
		MediaType string `json:"mediaType"`
		Digest    string `json:"digest"`
		Size      int64  `json:"size"`
	} `json:"layers"`
}

// scanOllama counts the manifests (one per model tag), sizes each model
// from its manifest's layer sizes, finds cloud models (a config naming a
// remote host) and sums the blobs from their metadata.
func scanOllama(w *walker, root string) {
	s := w.scan
	mdir := filepath.Join(root, "manifests")
	if fi, err := os.Stat(mdir); err != nil || !fi.IsDir() {
		s.note("audit.note.no_manifests", "path", root)
		w.walk(root, "", 0, func(file) {})
		return
	}
	read := 0
	w.walk(root, "", 0, func(f file) {
		rest, ok := strings.CutPrefix(f.rel, "manifests/")
		if !ok {
			return
		}
		s.models++
		if read++; read > maxManifests {
			if read == maxManifests+1 {
				s.note("audit.note.many_manifests", "max", strconv.Itoa(maxManifests))
			}
			return
		}
		name := ollamaName(rest)
		raw, err := readBounded(filepath.Join(root, filepath.FromSlash(f.rel)), 1<<20)
		if err != nil {
			s.note("audit.note.manifest", args([]string{"name", name}, reason("reason", errText(err)))...)
			return
		}
		var m ollamaManifest
		if err := json.Unmarshal(raw, &m); err != nil {
			s.note("audit.note.manifest_json", args([]string{"name", name}, reason("reason", err.Error()))...)
			return
		}
		var size int64
		for _, l := range m.Layers {
			if l.Size > 0 {
				size += l.Size
			}
		}
		if m.Config != nil {
			if m.Config.Size > 0 {
				size += m.Config.Size
			}
			if remote := ollamaRemoteHost(root, m.Config.Digest); remote != "" {
				s.cloud = append(s.cloud, name)
			}
		}
		s.perModel[name] = size
	})
	sort.Strings(s.cloud)
}

// ollamaRemoteHost reads a model's config blob (small JSON) and returns the
// remote host it forwards to, if any.
func ollamaRemoteHost(root, digest string) string {
	hexd, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexd) != 64 || strings.ContainsAny(hexd, "/\\.") {
		return ""
	}
	raw, err := readBounded(filepath.Join(root, "blobs", "sha256-"+hexd), maxConfigBlob)
	if err != nil {
		return ""
	}
	var cfg struct {
		RemoteHost string `json:"remote_host"`
	}
	if json.Unmarshal(raw, &cfg) != nil {
		return ""
	}
	return cfg.RemoteHost
}

// ollamaName turns <registry>/<namespace>/<model>/<tag> into the name
// Ollama shows.
func ollamaName(rel string) string {
	parts := strings.Split(rel, "/")
	if len(parts) != 4 {
		return rel
	}
	reg, ns, model, tag := parts[0], parts[1], parts[2], parts[3]
	switch {
	case reg == "registry.ollama.ai" && ns == "library":
		return model + ":" + tag
	case reg == "registry.ollama.ai":
		return ns + "/" + model + ":" + tag
	}
	return reg + "/" + ns + "/" + model + ":" + tag
}
