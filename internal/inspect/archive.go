package inspect

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/llmfence/llmfence/internal/verdict"
)

// embeddedScanWindow is how far into an unrecognised file the inspector
// looks for the start of a pickle stream.
const embeddedScanWindow = 1 << 20

// maxEmbeddedCandidates bounds the pickle scans tried on one unknown file.
const maxEmbeddedCandidates = 32

// embeddedPickle looks for a binary pickle stream (PROTO or FRAME) starting inside an
// unrecognised file and reports it (INS-003) when it imports callables.
func (in *Inspector) embeddedPickle(ctx context.Context, c *content, n *node) error {
	if in.p.Pickle == nil {
		if c.member == "" {
			n.add(in.memberFinding(c, "INS-002", "no pickle parser to search for embedded streams"))
		}
		return nil
	}
	window := min(c.size, embeddedScanWindow)
	buf := c.head
	if int64(len(buf)) < window {
		buf = make([]byte, window)
		if _, err := c.ra.ReadAt(buf, 0); err != nil && err != io.EOF {
			return err
		}
	}
	tried := 0
	for i := 1; i+1 < len(buf) && tried < maxEmbeddedCandidates; i++ {
		// PROTO 0-5 or FRAME: a binary stream starts here.
		if !(buf[i] == 0x80 && buf[i+1] <= 5) && buf[i] != 0x95 {
			continue
		}
		tried++
		if err := ctx.Err(); err != nil {
			return err
		}
		var rep Report
		err := in.guard(c, n, "pickle", func() error {
			var err error
			rep, err = in.p.Pickle.ScanStream(ctx, io.LimitReader(io.NewSectionReader(c.ra, int64(i), c.size-int64(i)), embeddedScanWindow))
			return err
		})
		if err != nil {
			return err
		}
		if imports := globalsOf(rep); len(imports) > 0 {
			f := in.memberFinding(c, "INS-003", fmt.Sprintf("pickle stream at offset %d imports %s", i, strings.Join(firstN(imports, 5), ", ")))
			f.Offset = int64(i)
			n.add(f)
			for j := range rep.Findings {
				if rep.Findings[j].Offset >= 0 {
					rep.Findings[j].Offset += int64(i) // relative to the file
				}
			}
			n.mergeReport(c.member, rep)
			return nil
		}
	}
	// Nothing is clean because it was not recognised: members too. A
	// container drops this again for members its loader reads as raw data
	// (see rawDataMember).
	n.add(in.memberFinding(c, "INS-002", ""))
	return nil
}

// rawDataMember reports whether a member of a container of this format is
// data its loader copies as raw bytes and never parses: the storages of a
// PyTorch zip checkpoint (<archive>/data/<key>), the HDF5 weights of a
// Keras archive.
func rawDataMember(format, name string) bool {
	switch format {
	case FormatPyTorchZip:
		dir, key := path.Split(name)
		if key == "" || strings.Trim(key, "0123456789") != "" && !isStorageKey(key) {
			return false
		}
		return path.Base(strings.TrimSuffix(dir, "/")) == "data"
	case FormatKeras:
		return strings.HasSuffix(name, ".h5") || strings.HasSuffix(name, ".weights.h5")
	}
	return false
}

// isStorageKey: torch names storages by decimal keys; older writers used
// the storage's id, also digits, sometimes with a "_" suffix part.
func isStorageKey(k string) bool {
	for _, c := range k {
		if (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return k != ""
}

// globalsOf returns the imports a pickle report lists in its metadata.
func globalsOf(r Report) []string {
	switch g := r.Metadata["globals"].(type) {
	case []string:
		return g
	}
	return nil
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string{}, s[:n]...), fmt.Sprintf("and %d more", len(s)-n))
}

// memberEntry is one line of an archive's member list in the metadata.
type memberEntry struct {
	Name    string `json:"name"`
	Size    int64  `json:"size"`
	Format  string `json:"format,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	Verdict string `json:"verdict,omitempty"`
}

// walkArchive lists a container's members and examines each one.
func (in *Inspector) walkArchive(ctx context.Context, c *content, n *node, kind string) error {
	if in.p.Archive == nil {
		in.notParsed(c, n)
		return nil
	}
	var (
		listed    = []memberEntry{}
		names     []string
		count     int
		deepNoted bool
		kerasCfg  []byte
	)
	return in.guard(c, n, kind, func() error {
		fs, err := in.p.Archive.Walk(ctx, c.ra, c.size, kind, func(m Member) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			count++
			if len(names) < 100000 {
				names = append(names, m.Name)
			}
			mpath := joinMember(c.member, m.Name)
			e := memberEntry{Name: m.Name, Size: m.Size}
			defer func() {
				if len(listed) < in.opts.MaxListed {
					listed = append(listed, e)
				}
			}()
			if c.depth+1 > in.opts.MaxDepth {
				if !deepNoted {
					deepNoted = true
					n.add(in.memberFinding(c, "INS-005", fmt.Sprintf("members of %s at nesting depth %d not opened (limit %d)", orFile(c.member), c.depth+1, in.opts.MaxDepth)))
				}
				return nil
			}
			if m.Size > in.opts.MaxMemberSize {
				n.add(in.memberFinding(&content{member: mpath}, "INS-006", fmt.Sprintf("%d bytes, limit %d", m.Size, in.opts.MaxMemberSize)))
				return nil
			}
			if m.Raw != nil && m.Size >= 0 {
				return in.examineMember(ctx, c, n, kind, &e, mpath, m.Name, m.Raw, m.Size, &kerasCfg)
			}
			if m.Open == nil {
				return nil
			}
			rc, err := m.Open()
			if err != nil {
				n.add(in.memberFinding(&content{member: mpath}, "INS-008", fmt.Sprintf("cannot open member: %v", err)))
				return nil
			}
			mat, err := in.materialise(ctx, rc)
			rc.Close()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				id := "INS-008"
				if errors.Is(err, errMemberTooLarge) {
					id = "INS-006"
				}
				n.add(in.memberFinding(&content{member: mpath}, id, err.Error()))
				return nil
			}
			defer mat.close()
			e.SHA256 = mat.sum
			return in.examineMember(ctx, c, n, kind, &e, mpath, m.Name, mat.ra, mat.size, &kerasCfg)
		})
		n.addIn(c.member, fs)
		n.format = refineContainer(n.format, names)
		// Keras loads any zip with a config.json at its root whose JSON
		// is a Keras object — metadata.json and the weights are optional
		// (config only, .npz weights, no metadata) — and builds the model
		// from the config before it looks at any weights.
		if n.format == FormatZip && kerasCfg != nil && in.looksKeras(kerasCfg) {
			n.format = FormatKeras
		}
		// Members the loader of this container reads as raw data are not
		// "not inspected": drop INS-002 for them and name their format.
		kept := n.findings[:0]
		for _, f := range n.findings {
			if f.ID == "INS-002" && strings.HasPrefix(f.Member, joinMember(c.member, "")) && rawDataMember(n.format, strings.TrimPrefix(f.Member, joinMember(c.member, "")+boolStr(c.member != "", "!"))) {
				continue
			}
			kept = append(kept, f)
		}
		n.findings = kept
		for i := range listed {
			if listed[i].Format == FormatUnknown && rawDataMember(n.format, listed[i].Name) {
				listed[i].Format, listed[i].Verdict = "raw-data", string(verdict.Clean)
			}
		}
		if n.format == FormatKeras && kerasCfg != nil && in.p.Keras != nil {
			fs, kerr := in.p.Keras.CheckKerasConfig(kerasCfg)
			if kerr != nil && err == nil {
				err = kerr
			}
			n.addIn(joinMember(c.member, "config.json"), fs)
		}
		n.setMeta("member_count", count)
		n.setMeta("members", listed)
		if count > len(listed) {
			n.setMeta("members_truncated", true)
		}
		return err
	})
}

// examineMember inspects one extracted member and folds the result into
// the container's node.
func (in *Inspector) examineMember(ctx context.Context, c *content, n *node, kind string, e *memberEntry, mpath, name string, ra io.ReaderAt, size int64, kerasCfg *[]byte) error {
	e.Size = size
	head, tail, err := headTail(ra, size)
	if err != nil {
		n.add(in.memberFinding(&content{member: mpath}, "INS-008", err.Error()))
		return nil
	}
	sub, _ := in.examine(ctx, &content{member: mpath, name: name, ra: ra, size: size, head: head, tail: tail, depth: c.depth + 1, parent: kind})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	e.Format = sub.format
	e.Verdict = string(verdictOf(sub.findings))
	n.add(sub.findings...)
	if n.model == nil && sub.model != nil {
		n.model = sub.model
	}
	if name == "config.json" && size <= 16<<20 {
		cfg := make([]byte, size)
		if _, err := ra.ReadAt(cfg, 0); err == nil || err == io.EOF {
			*kerasCfg = cfg
		}
	}
	return nil
}

func orFile(member string) string {
	if member == "" {
		return "the file"
	}
	return member
}

func joinMember(parent, name string) string {
	if parent == "" {
		return name
	}
	if name == "" {
		return parent
	}
	return parent + "!" + name
}

// refineContainer names what a zip or tar holds, from its member names.
func refineContainer(format string, names []string) string {
	has := map[string]bool{}
	allNPY := len(names) > 0
	pkl, tarPickle, tarStorages := false, false, false
	for _, nm := range names {
		has[nm] = true
		if !strings.HasSuffix(strings.ToLower(nm), ".npy") {
			allNPY = false
		}
		if path.Base(nm) == "data.pkl" {
			pkl = true
		}
		switch strings.TrimPrefix(nm, "./") {
		case "pickle":
			tarPickle = true
		case "storages", "tensors", "sys_info":
			tarStorages = true
		}
	}
	switch format {
	case FormatZip:
		switch {
		case pkl:
			return FormatPyTorchZip
		case has["config.json"] && (has["metadata.json"] || has["model.weights.h5"]):
			return FormatKeras
		case allNPY:
			return FormatNPZ
		}
	case FormatTar:
		if tarPickle && tarStorages {
			return FormatPyTorchTar
		}
	}
	return format
}

func verdictOf(fs []verdict.Finding) verdict.Verdict {
	vs := make([]verdict.Verdict, 0, len(fs))
	for _, f := range fs {
		vs = append(vs, f.Verdict)
	}
	return verdict.Worst(vs...)
}

var errMemberTooLarge = errors.New("member larger than the extraction limit")

// materialised is an extracted archive member, in memory or in a temporary
// file.
type materialised struct {
	ra    io.ReaderAt
	size  int64
	sum   string
	close func()
}

// materialise copies a member to memory (up to MemberMemory) or to a
// temporary file (up to MaxMemberSize), hashing it on the way.
func (in *Inspector) materialise(ctx context.Context, r io.Reader) (*materialised, error) {
	h := sha256.New()
	var buf bytes.Buffer
	lim := in.opts.MemberMemory
	n, err := copyCtx(ctx, io.MultiWriter(&buf, h), io.LimitReader(r, lim+1))
	if err != nil {
		return nil, fmt.Errorf("extracting member: %w", err)
	}
	if n <= lim {
		data := buf.Bytes()
		return &materialised{ra: bytes.NewReader(data), size: n, sum: hex.EncodeToString(h.Sum(nil)), close: func() {}}, nil
	}
	f, err := os.CreateTemp(in.opts.TempDir, "llmfence-member-*")
	if err != nil {
		return nil, fmt.Errorf("extracting member: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := f.Write(buf.Bytes()); err != nil {
		cleanup()
		return nil, fmt.Errorf("extracting member: %w", err)
	}
	buf = bytes.Buffer{}
	m, err := copyCtx(ctx, io.MultiWriter(f, h), io.LimitReader(r, in.opts.MaxMemberSize-n+1))
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("extracting member: %w", err)
	}
	total := n + m
	if total > in.opts.MaxMemberSize {
		cleanup()
		return nil, fmt.Errorf("%w (%d bytes)", errMemberTooLarge, in.opts.MaxMemberSize)
	}
	return &materialised{ra: f, size: total, sum: hex.EncodeToString(h.Sum(nil)), close: cleanup}, nil
}

// copyCtx copies with a 256 KiB buffer, checking ctx between chunks.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

func boolStr(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

// looksKeras reports whether cfg is a serialized Keras object (a JSON
// object with a class_name), as the Keras checker reads JSON.
func (in *Inspector) looksKeras(cfg []byte) bool {
	if ks, ok := in.p.Keras.(KerasSniffer); ok {
		return ks.LooksKerasConfig(cfg)
	}
	return bytes.Contains(cfg, []byte(`"class_name"`))
}
