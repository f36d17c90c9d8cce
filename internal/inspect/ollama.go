package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// Ollama layer media types (application/vnd.ollama.image.<kind>).
const ollamaMediaPrefix = "application/vnd.ollama.image."

var ollamaKinds = map[string]bool{
	"model": true, "template": true, "system": true, "params": true,
	"license": true, "projector": true, "adapter": true, "messages": true,
}

var sha256Digest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

const (
	maxManifestSize = 1 << 20 // a manifest is a few hundred bytes
	maxTextLayer    = 1 << 20 // system, template, params, license layers read
	maxMetaText     = 4 << 10 // text kept in the metadata per layer
)

// ollamaManifest is the Docker v2 manifest Ollama writes per model tag.
type ollamaManifest struct {
	SchemaVersion int           `json:"schemaVersion"`
	MediaType     string        `json:"mediaType"`
	Config        *ollamaLayer  `json:"config"`
	Layers        []ollamaLayer `json:"layers"`
}

type ollamaLayer struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// ollamaConfig is the part of the config blob that describes the model.
type ollamaConfig struct {
	ModelFormat   string   `json:"model_format"`
	ModelFamily   string   `json:"model_family"`
	ModelFamilies []string `json:"model_families,omitempty"`
	ModelType     string   `json:"model_type"`
	FileType      string   `json:"file_type"`
}

// blobState is what verifying one referenced blob found.
type blobState struct {
	digest  string
	path    string
	missing bool
	res     *Result
}

func (b *blobState) tampered() bool {
	return b.res != nil && b.res.Error == "" && b.res.SHA256 != "" && "sha256:"+b.res.SHA256 != b.digest
}

// InspectOllamaStore verifies an Ollama model store (the directory holding
// manifests/ and blobs/, by default ~/.ollama/models): every blob a
// manifest references is hashed (Workers in parallel) and inspected, and
// each model's system prompt, lineage and template are rated. It emits one
// result per manifest, then one per blob no manifest references.
func (in *Inspector) InspectOllamaStore(ctx context.Context, dir string, emit func(*Result) error) (Summary, error) {
	var sum Summary
	mdir, bdir := filepath.Join(dir, "manifests"), filepath.Join(dir, "blobs")
	if st, err := os.Stat(mdir); err != nil || !st.IsDir() {
		return sum, fmt.Errorf("%s is not an Ollama model store: no manifests directory", dir)
	}
	judge, err := risk.NewJudge()
	if err != nil {
		return sum, fmt.Errorf("loading the model rating rules: %w", err)
	}
	type manifestFile struct {
		path, name string
		raw        []byte
		m          *ollamaManifest
		err        string
	}
	var manifests []*manifestFile
	err = filepath.WalkDir(mdir, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("reading manifests: %w", err)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, _ := filepath.Rel(mdir, p)
		mf := &manifestFile{path: p, name: ollamaModelName(rel)}
		raw, rerr := readBounded(p, maxManifestSize)
		mf.raw = raw
		switch {
		case rerr != nil:
			mf.err = rerr.Error()
		default:
			var m ollamaManifest
			if jerr := json.Unmarshal(raw, &m); jerr != nil {
				mf.err = "not JSON: " + jerr.Error()
			} else {
				mf.m = &m
			}
		}
		manifests = append(manifests, mf)
		return nil
	})
	if err != nil {
		return sum, err
	}

	// Every referenced digest that names a blob, verified once.
	blobs := map[string]*blobState{}
	var order []string
	ref := func(l *ollamaLayer) {
		if l == nil || !sha256Digest.MatchString(l.Digest) || blobs[l.Digest] != nil {
			return
		}
		b := &blobState{digest: l.Digest, path: filepath.Join(bdir, "sha256-"+strings.TrimPrefix(l.Digest, "sha256:"))}
		blobs[l.Digest] = b
		order = append(order, l.Digest)
	}
	for _, mf := range manifests {
		if mf.m != nil {
			ref(mf.m.Config)
			for i := range mf.m.Layers {
				ref(&mf.m.Layers[i])
			}
		}
	}
	var jobs []job
	var jobBlobs []*blobState
	for _, d := range order {
		b := blobs[d]
		if st, err := os.Lstat(b.path); err != nil || !st.Mode().IsRegular() {
			b.missing = true
			continue
		}
		jobs = append(jobs, job{path: b.path, display: b.path})
		jobBlobs = append(jobBlobs, b)
	}
	i := 0
	if err := in.run(ctx, jobs, func(r *Result) error {
		jobBlobs[i].res = r
		i++
		return nil
	}); err != nil {
		return sum, err
	}

	out := func(r *Result) error {
		r.finish()
		sum.add(r, in.opts.FailOn)
		return emit(r)
	}
	for _, mf := range manifests {
		r := in.rateManifest(mf.path, mf.name, mf.raw, mf.m, mf.err, blobs, judge)
		if err := out(r); err != nil {
			return sum, err
		}
	}

	// Orphans: files in blobs/ no manifest references.
	ents, err := os.ReadDir(bdir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return sum, fmt.Errorf("reading blobs: %w", err)
	}
	var orphans []job
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "sha256-") || !e.Type().IsRegular() {
			continue
		}
		if blobs["sha256:"+strings.TrimPrefix(name, "sha256-")] != nil {
			continue
		}
		p := filepath.Join(bdir, name)
		orphans = append(orphans, job{path: p, display: p})
	}
	sort.Slice(orphans, func(i, j int) bool { return orphans[i].path < orphans[j].path })
	return sum, in.run(ctx, orphans, func(r *Result) error {
		r.Findings = append(r.Findings, in.cat.New("INS-012", "not referenced by any manifest", -1))
		return out(r)
	})
}

// rateManifest builds the result for one manifest from its verified blobs.
func (in *Inspector) rateManifest(path, name string, raw []byte, m *ollamaManifest, perr string, blobs map[string]*blobState, judge *risk.Judge) *Result {
	sum := sha256.Sum256(raw)
	r := &Result{Path: path, Format: FormatOllama, Size: int64(len(raw)), SHA256: hex.EncodeToString(sum[:])}
	meta := map[string]any{"model": name}
	r.Metadata = meta
	if perr != "" {
		r.Findings = append(r.Findings, in.cat.New("INS-013", perr, -1))
		return r
	}
	if len(m.Layers) == 0 {
		r.Findings = append(r.Findings, in.cat.New("INS-013", "no layers", -1))
	}
	model := service.Model{Name: name}
	info := &ModelInfo{Name: name}
	texts := map[string]string{}
	var layers []map[string]any
	check := func(l ollamaLayer, kind string) *blobState {
		member := kind
		if l.MediaType == "" || l.Digest == "" {
			r.Findings = append(r.Findings, in.cat.New("INS-013", fmt.Sprintf("layer %q without media type or digest", kind), -1))
			return nil
		}
		if !sha256Digest.MatchString(l.Digest) {
			f := in.cat.New("INS-014", fmt.Sprintf("%s layer digest %q", kind, truncate(l.Digest, 100)), -1)
			f.Member = member
			r.Findings = append(r.Findings, f)
			return nil
		}
		member = kind + " " + l.Digest
		b := blobs[l.Digest]
		entry := map[string]any{"media_type": l.MediaType, "digest": l.Digest, "size": l.Size}
		defer func() { layers = append(layers, entry) }()
		switch {
		case b.missing:
			entry["status"] = "missing"
			f := in.cat.New("INS-011", fmt.Sprintf("%s layer: blobs/%s not found", kind, filepath.Base(b.path)), -1)
			f.Member = member
			r.Findings = append(r.Findings, f)
			return nil
		case b.res.Error != "":
			entry["status"] = "unreadable"
			f := in.cat.New("INS-008", fmt.Sprintf("%s layer: %s", kind, b.res.Error), -1)
			f.Member = member
			r.Findings = append(r.Findings, f)
			return nil
		case b.tampered():
			entry["status"] = "tampered"
			f := in.cat.New("INS-010", fmt.Sprintf("%s layer: content hashes to sha256:%s", kind, b.res.SHA256), -1)
			f.Member = member
			r.Findings = append(r.Findings, f)
		default:
			entry["status"] = "verified"
			if l.Size != b.res.Size {
				f := in.cat.New("INS-017", fmt.Sprintf("%s layer: manifest says %d bytes, blob has %d", kind, l.Size, b.res.Size), -1)
				f.Member = member
				r.Findings = append(r.Findings, f)
			}
		}
		entry["format"] = b.res.Format
		for _, f := range b.res.Findings {
			if f.ID == "INS-002" {
				continue // text layers are not model formats
			}
			f.Member = joinMember(member, f.Member)
			r.Findings = append(r.Findings, f)
		}
		return b
	}
	if m.Config != nil {
		if b := check(*m.Config, "config"); b != nil {
			var cfg ollamaConfig
			if data, err := readBounded(b.path, maxTextLayer); err == nil && json.Unmarshal(data, &cfg) == nil {
				model.Family, info.Architecture = cfg.ModelFamily, cfg.ModelFamily
				model.ParameterSize, model.Quantization, info.Quantization = cfg.ModelType, cfg.FileType, cfg.FileType
				model.Format = cfg.ModelFormat
				meta["config"] = cfg
			}
		}
	}
	for _, l := range m.Layers {
		kind, known := strings.CutPrefix(l.MediaType, ollamaMediaPrefix)
		if !known || !ollamaKinds[kind] {
			kind = l.MediaType
			if l.MediaType != "" {
				r.Findings = append(r.Findings, in.cat.New("INS-018", l.MediaType, -1))
			}
		}
		b := check(l, kind)
		if b == nil {
			continue
		}
		switch kind {
		case "model":
			if b.res.Model != nil {
				mi := *b.res.Model
				mi.Name = name
				if mi.Architecture == "" {
					mi.Architecture = info.Architecture
				}
				if mi.Quantization == "" {
					mi.Quantization = info.Quantization
				}
				info = &mi
				if model.Family == "" {
					model.Family = mi.Architecture
				}
				model.ParentModel = mi.BaseModel
			}
			meta["model_format"] = b.res.Format
		case "system", "template", "params", "license":
			data, err := readBounded(b.path, maxTextLayer)
			if err != nil {
				continue
			}
			texts[kind] = string(data)
			meta[kind] = truncate(string(data), maxMetaText)
		}
	}
	meta["layers"] = layers
	model.SystemPrompt, model.Template, model.Parameters, model.License = texts["system"], texts["template"], texts["params"], texts["license"]
	if info.License == "" {
		info.License = firstLine(texts["license"])
	}
	r.Model = info

	if t := texts["template"]; t != "" && in.p.Template != nil {
		for _, f := range in.p.Template.CheckTemplate(t, info.Architecture) {
			// Ollama templates are Go text/template, not Jinja: the
			// checker's informational notes (does not parse as Jinja, not a
			// known Jinja family template) say nothing about them.
			if f.Verdict == verdict.Clean {
				continue
			}
			f.Member = joinMember("template", f.Member)
			r.Findings = append(r.Findings, f)
		}
	}
	svc := &service.Service{Product: "", Auth: service.AuthUnknown, Models: []service.Model{model}}
	judge.Annotate(svc)
	if cats := svc.Models[0].SystemPromptCategories; len(cats) > 0 {
		meta["system_prompt_categories"] = cats
	}
	for _, sf := range svc.Findings {
		var f verdict.Finding
		switch sf.ID {
		case "LLMF-005":
			f = in.cat.New("INS-015", sf.Detail+" (scan: LLMF-005)", -1)
		case "LLMF-006":
			f = in.cat.New("INS-016", sf.Detail+" (scan: LLMF-006)", -1)
		default:
			continue
		}
		f.Severity = sf.Severity // the same model gets the same rating as in scan
		if f.ID == "INS-015" {
			f.Member = "system"
		}
		r.Findings = append(r.Findings, f)
	}
	return r
}

// ollamaModelName turns manifests/<registry>/<namespace>/<model>/<tag> into
// the name Ollama shows.
func ollamaModelName(rel string) string {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) != 4 {
		return filepath.ToSlash(rel)
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

// readBounded reads at most limit bytes of a regular file; longer files
// are an error.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(f, limit+1))
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if n > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return buf.Bytes(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s + "…"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return truncate(strings.TrimSpace(s), 200)
}
