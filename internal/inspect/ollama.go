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

// ModelJudge rates one model as `llmfence scan` rates it (risk.Judge): its
// system prompt and lineage. RateModel may fill m's classification fields.
type ModelJudge interface {
	RateModel(m *service.Model) []risk.ModelFinding
}

// concernFindings maps what the judge finds in a model to this package's
// findings, and the part of the model the finding is in.
var concernFindings = map[risk.Concern]struct{ id, member string }{
	risk.ConcernHarmfulSystemPrompt: {"INS-015", "system"},
	risk.ConcernGuardrailsRemoved:   {"INS-016", ""},
}

// manifestFile is one file under manifests/, read and parsed.
type manifestFile struct {
	path, name string
	raw        []byte
	m          *ollamaManifest
	err        string // why it could not be read or parsed
}

// InspectOllamaStore verifies an Ollama model store (the directory holding
// manifests/ and blobs/, by default ~/.ollama/models): every blob a
// manifest references is hashed (Workers in parallel) and inspected, and
// each model's system prompt, lineage and template are rated, the first
// two by judge. It emits one result per manifest, then one per blob no
// manifest references.
func (in *Inspector) InspectOllamaStore(ctx context.Context, dir string, judge ModelJudge, emit func(*Result) error) (Summary, error) {
	var sum Summary
	if judge == nil {
		return sum, errors.New("inspect: no model judge to rate the store's models")
	}
	mdir, bdir := filepath.Join(dir, "manifests"), filepath.Join(dir, "blobs")
	if st, err := os.Stat(mdir); err != nil || !st.IsDir() {
		return sum, fmt.Errorf("%s is not an Ollama model store: no manifests directory", dir)
	}
	manifests, err := readManifests(ctx, mdir)
	if err != nil {
		return sum, err
	}
	blobs, err := in.verifyBlobs(ctx, bdir, manifests)
	if err != nil {
		return sum, err
	}
	out := func(r *Result) error {
		r.finish()
		sum.add(r, in.opts.FailOn)
		return emit(r)
	}
	for _, mf := range manifests {
		if err := out(in.rateManifest(mf, blobs, judge)); err != nil {
			return sum, err
		}
	}
	return sum, in.inspectOrphans(ctx, bdir, blobs, out)
}

// readManifests reads every regular file under mdir as a manifest; one
// that cannot be read or parsed says why in its err.
func readManifests(ctx context.Context, mdir string) ([]*manifestFile, error) {
	var manifests []*manifestFile
	err := filepath.WalkDir(mdir, func(p string, d fs.DirEntry, err error) error {
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
	return manifests, err
}

// verifyBlobs hashes and inspects, once each, the blobs the manifests
// reference by a well-formed digest, and returns them by digest.
func (in *Inspector) verifyBlobs(ctx context.Context, bdir string, manifests []*manifestFile) (map[string]*blobState, error) {
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
	err := in.run(ctx, jobs, func(r *Result) error {
		jobBlobs[i].res = r
		i++
		return nil
	})
	return blobs, err
}

// inspectOrphans inspects the files in blobs/ that no manifest references.
func (in *Inspector) inspectOrphans(ctx context.Context, bdir string, blobs map[string]*blobState, out func(*Result) error) error {
	ents, err := os.ReadDir(bdir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading blobs: %w", err)
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
	return in.run(ctx, orphans, func(r *Result) error {
		r.Findings = append(r.Findings, in.cat.New("INS-012", "not referenced by any manifest", -1))
		return out(r)
	})
}

// manifestLayer is one layer of a manifest as the result's metadata lists
// it (fields in the order JSON has always shown them).
type manifestLayer struct {
	Digest    string `json:"digest"`
	Format    string `json:"format,omitempty"`
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
	// Status: verified, tampered, missing or unreadable.
	Status string `json:"status"`
}

// layerTexts are the text layers of a model, read in full (bounded).
type layerTexts struct {
	system, template, params, license string
}

// manifestRating is the result for one manifest while it is built.
type manifestRating struct {
	in     *Inspector
	r      *Result
	meta   map[string]any
	blobs  map[string]*blobState
	model  service.Model // the model as scan would see it, for the judge
	info   *ModelInfo
	texts  layerTexts
	layers []manifestLayer
}

// rateManifest builds the result for one manifest from its verified
// blobs: every layer checked against its blob, the model described from
// its config and layers, its template checked and the model judged.
func (in *Inspector) rateManifest(mf *manifestFile, blobs map[string]*blobState, judge ModelJudge) *Result {
	sum := sha256.Sum256(mf.raw)
	r := &Result{Path: mf.path, Format: FormatOllama, Size: int64(len(mf.raw)), SHA256: hex.EncodeToString(sum[:])}
	meta := map[string]any{"model": mf.name}
	r.Metadata = meta
	if mf.err != "" {
		r.Findings = append(r.Findings, in.cat.New("INS-013", mf.err, -1))
		return r
	}
	if len(mf.m.Layers) == 0 {
		r.Findings = append(r.Findings, in.cat.New("INS-013", "no layers", -1))
	}
	mr := &manifestRating{in: in, r: r, meta: meta, blobs: blobs, model: service.Model{Name: mf.name}, info: &ModelInfo{Name: mf.name}}
	if mf.m.Config != nil {
		mr.config(*mf.m.Config)
	}
	for _, l := range mf.m.Layers {
		mr.layer(l)
	}
	meta["layers"] = mr.layers
	mr.describeModel()
	mr.checkTemplate()
	mr.judge(judge)
	return r
}

// add appends finding id of the catalogue, in member when one is given.
func (mr *manifestRating) add(id, detail, member string) {
	f := mr.in.cat.New(id, detail, -1)
	f.Member = member
	mr.r.Findings = append(mr.r.Findings, f)
}

// verify checks one layer against its blob, lists it in the metadata and
// adds what the blob's own inspection found. It returns the blob when its
// content can be used (verified, or tampered but readable), else nil.
func (mr *manifestRating) verify(l ollamaLayer, kind string) *blobState {
	if l.MediaType == "" || l.Digest == "" {
		mr.add("INS-013", fmt.Sprintf("layer %q without media type or digest", kind), "")
		return nil
	}
	if !sha256Digest.MatchString(l.Digest) {
		mr.add("INS-014", fmt.Sprintf("%s layer digest %q", kind, truncate(l.Digest, 100)), kind)
		return nil
	}
	member := kind + " " + l.Digest
	b := mr.blobs[l.Digest]
	entry := manifestLayer{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}
	defer func() { mr.layers = append(mr.layers, entry) }()
	switch {
	case b.missing:
		entry.Status = "missing"
		mr.add("INS-011", fmt.Sprintf("%s layer: blobs/%s not found", kind, filepath.Base(b.path)), member)
		return nil
	case b.res.Error != "":
		entry.Status = "unreadable"
		mr.add("INS-008", fmt.Sprintf("%s layer: %s", kind, b.res.Error), member)
		return nil
	case b.tampered():
		entry.Status = "tampered"
		mr.add("INS-010", fmt.Sprintf("%s layer: content hashes to sha256:%s", kind, b.res.SHA256), member)
	default:
		entry.Status = "verified"
		if l.Size != b.res.Size {
			mr.add("INS-017", fmt.Sprintf("%s layer: manifest says %d bytes, blob has %d", kind, l.Size, b.res.Size), member)
		}
	}
	entry.Format = b.res.Format
	for _, f := range b.res.Findings {
		if f.ID == "INS-002" {
			continue // text layers are not model formats
		}
		f.Member = joinMember(member, f.Member)
		mr.r.Findings = append(mr.r.Findings, f)
	}
	return b
}

// config reads the model's family, size and quantization from the config
// blob.
func (mr *manifestRating) config(l ollamaLayer) {
	b := mr.verify(l, "config")
	if b == nil {
		return
	}
	var cfg ollamaConfig
	if data, err := readBounded(b.path, maxTextLayer); err == nil && json.Unmarshal(data, &cfg) == nil {
		mr.model.Family, mr.info.Architecture = cfg.ModelFamily, cfg.ModelFamily
		mr.model.ParameterSize, mr.model.Quantization, mr.info.Quantization = cfg.ModelType, cfg.FileType, cfg.FileType
		mr.model.Format = cfg.ModelFormat
		mr.meta["config"] = cfg
	}
}

// layer verifies one layer and takes from it what describes the model:
// the model file's own description, or a text layer.
func (mr *manifestRating) layer(l ollamaLayer) {
	kind, known := strings.CutPrefix(l.MediaType, ollamaMediaPrefix)
	if !known || !ollamaKinds[kind] {
		kind = l.MediaType
		if l.MediaType != "" {
			mr.add("INS-018", l.MediaType, "")
		}
	}
	b := mr.verify(l, kind)
	if b == nil {
		return
	}
	switch kind {
	case "model":
		if b.res.Model != nil {
			mi := *b.res.Model
			mi.Name = mr.model.Name
			if mi.Architecture == "" {
				mi.Architecture = mr.info.Architecture
			}
			if mi.Quantization == "" {
				mi.Quantization = mr.info.Quantization
			}
			mr.info = &mi
			if mr.model.Family == "" {
				mr.model.Family = mi.Architecture
			}
			mr.model.ParentModel = mi.BaseModel
		}
		mr.meta["model_format"] = b.res.Format
	case "system", "template", "params", "license":
		data, err := readBounded(b.path, maxTextLayer)
		if err != nil {
			return
		}
		text := string(data)
		switch kind {
		case "system":
			mr.texts.system = text
		case "template":
			mr.texts.template = text
		case "params":
			mr.texts.params = text
		case "license":
			mr.texts.license = text
		}
		mr.meta[kind] = truncate(text, maxMetaText)
	}
}

// describeModel completes the model from its text layers.
func (mr *manifestRating) describeModel() {
	t := mr.texts
	mr.model.SystemPrompt, mr.model.Template, mr.model.Parameters, mr.model.License = t.system, t.template, t.params, t.license
	if mr.info.License == "" {
		mr.info.License = firstLine(t.license)
	}
	mr.r.Model = mr.info
}

// checkTemplate rates the model's template with the template checker.
func (mr *manifestRating) checkTemplate() {
	t := mr.texts.template
	if t == "" || mr.in.p.Template == nil {
		return
	}
	fs, err := mr.in.p.Template.CheckTemplate(t, mr.info.Architecture)
	if err != nil {
		mr.add("INS-008", "template: "+err.Error(), "template")
		return
	}
	for _, f := range fs {
		// Ollama templates are Go text/template, not Jinja: the checker's
		// informational notes (does not parse as Jinja, not a known Jinja
		// family template) say nothing about them.
		if f.Verdict == verdict.Clean {
			continue
		}
		f.Member = joinMember("template", f.Member)
		mr.r.Findings = append(mr.r.Findings, f)
	}
}

// judge rates the model's system prompt and lineage as scan rates them,
// under this catalogue's IDs with scan's severity: the same model gets the
// same rating wherever it is found.
func (mr *manifestRating) judge(j ModelJudge) {
	m := mr.model
	rated := j.RateModel(&m)
	if cats := m.SystemPromptCategories; len(cats) > 0 {
		mr.meta["system_prompt_categories"] = cats
	}
	for _, mf := range rated {
		cf, ok := concernFindings[mf.Concern]
		if !ok {
			continue
		}
		f := mr.in.cat.New(cf.id, fmt.Sprintf("%s (scan: %s)", mf.Detail, mf.ID), -1)
		f.Severity = mf.Severity
		f.Member = cf.member
		mr.r.Findings = append(mr.r.Findings, f)
	}
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
