package vulndb

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// EnvFile names the environment variable that overrides where imported
// data is kept.
const EnvFile = "LLMFENCE_VULNDB"

// Limits bound what Import reads from untrusted exports.
type Limits struct {
	// MaxRecordBytes caps one record (one JSON file or zip member).
	MaxRecordBytes int64
	// MaxFileBytes caps one JSON file holding an array of records.
	MaxFileBytes int64
	// MaxFiles caps the files and zip members examined.
	MaxFiles int
	// MaxKept caps the records kept.
	MaxKept int
}

// DefaultLimits are generous for the real exports (the Go vulnerability
// database holds a few thousand records, the GitHub advisory database a
// few hundred thousand) and small enough that no input can exhaust memory.
var DefaultLimits = Limits{
	MaxRecordBytes: 4 << 20,
	MaxFileBytes:   256 << 20,
	MaxFiles:       2_000_000,
	MaxKept:        100_000,
}

// Source is one export an import read.
type Source struct {
	Path string `json:"path"`
	// Read counts the OSV records read; Kept those for llmfence products;
	// Skipped the files or members that were not readable OSV records.
	Read    int `json:"read"`
	Kept    int `json:"kept"`
	Skipped int `json:"skipped"`
	// Date is the newest "modified" time among every record read.
	Date time.Time `json:"date"`
	// Errors are the first few reasons records were skipped.
	Errors []string `json:"errors,omitempty"`
}

// Imported is the result of reading exports: the kept records and where
// they came from.
type Imported struct {
	Records []*Record
	Sources []Source
}

// Import reads OSV JSON from each path: a .json file (one record or an
// array of records), a directory tree of .json files, or a zip archive of
// them. It keeps the records that name a package the product map knows.
func Import(ctx context.Context, products *Products, lim Limits, paths ...string) (*Imported, error) {
	out := &Imported{}
	for _, p := range paths {
		src, recs, err := importPath(ctx, products, lim, p)
		if err != nil {
			return nil, err
		}
		out.Records = append(out.Records, recs...)
		out.Sources = append(out.Sources, src)
		if len(out.Records) > lim.MaxKept {
			return nil, fmt.Errorf("more than %d records for llmfence products; is this the right export?", lim.MaxKept)
		}
	}
	return out, nil
}

type importer struct {
	ctx      context.Context
	products *Products
	lim      Limits
	src      *Source
	kept     []*Record
	files    int
}

func importPath(ctx context.Context, products *Products, lim Limits, p string) (Source, []*Record, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	src := Source{Path: abs}
	im := &importer{ctx: ctx, products: products, lim: lim, src: &src}
	fi, err := os.Stat(p)
	if err != nil {
		return src, nil, fmt.Errorf("cannot read %s: %w", p, err)
	}
	switch {
	case fi.IsDir():
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.EqualFold(filepath.Ext(path), ".json") {
				return nil
			}
			return im.file(path)
		})
	default:
		err = im.file(p)
	}
	if err != nil {
		return src, nil, err
	}
	if src.Read == 0 {
		return src, nil, fmt.Errorf("%s holds no OSV records (%d files skipped)", p, src.Skipped)
	}
	src.Kept = len(im.kept)
	return src, im.kept, nil
}

// file reads one file on disk: a zip archive or JSON.
func (im *importer) file(path string) error {
	if err := im.count(); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	if n == 4 && bytes.Equal(head, []byte("PK\x03\x04")) {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		return im.zip(path, f, fi.Size())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(f, im.lim.MaxFileBytes+1))
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, err)
	}
	if int64(len(b)) > im.lim.MaxFileBytes {
		return fmt.Errorf("%s is larger than %d bytes", path, im.lim.MaxFileBytes)
	}
	im.json(path, b)
	return nil
}

// zip reads every .json member of a zip archive. Member sizes in the
// archive's headers are not trusted: each member is read through a limit.
func (im *importer) zip(path string, r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("%s: not a readable zip archive: %w", path, err)
	}
	for _, zf := range zr.File {
		if !strings.EqualFold(filepathExt(zf.Name), ".json") || zf.FileInfo().IsDir() {
			continue
		}
		if err := im.count(); err != nil {
			return err
		}
		rc, err := zf.Open()
		if err != nil {
			im.skip(path+"!"+zf.Name, err)
			continue
		}
		b, err := io.ReadAll(io.LimitReader(rc, im.lim.MaxRecordBytes+1))
		rc.Close()
		if err != nil {
			im.skip(path+"!"+zf.Name, err)
			continue
		}
		if int64(len(b)) > im.lim.MaxRecordBytes {
			im.skip(path+"!"+zf.Name, fmt.Errorf("larger than %d bytes", im.lim.MaxRecordBytes))
			continue
		}
		im.json(path+"!"+zf.Name, b)
	}
	return nil
}

func filepathExt(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 && !strings.ContainsAny(name[i:], "/\\") {
		return name[i:]
	}
	return ""
}

// json reads one JSON document: a record, or an array of records. Other
// JSON (an index file, a schema) is skipped.
func (im *importer) json(where string, b []byte) {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var arr []json.RawMessage
		if err := json.Unmarshal(b, &arr); err != nil {
			im.skip(where, err)
			return
		}
		for i, raw := range arr {
			if int64(len(raw)) > im.lim.MaxRecordBytes {
				im.skip(fmt.Sprintf("%s[%d]", where, i), fmt.Errorf("larger than %d bytes", im.lim.MaxRecordBytes))
				continue
			}
			im.record(fmt.Sprintf("%s[%d]", where, i), raw)
		}
		return
	}
	im.record(where, b)
}

func (im *importer) record(where string, b []byte) {
	r, err := ParseRecord(b)
	if err != nil {
		im.skip(where, err)
		return
	}
	im.src.Read++
	if r.Modified.After(im.src.Date) {
		im.src.Date = r.Modified
	}
	if im.products.relevant(r) {
		r.Notes = nil // annotations belong to llmfence's embedded data only
		im.kept = append(im.kept, r)
	}
}

func (im *importer) skip(where string, err error) {
	im.src.Skipped++
	if len(im.src.Errors) < 5 {
		im.src.Errors = append(im.src.Errors, fmt.Sprintf("%s: %v", where, err))
	}
}

func (im *importer) count() error {
	if err := im.ctx.Err(); err != nil {
		return err
	}
	im.files++
	if im.files > im.lim.MaxFiles {
		return fmt.Errorf("more than %d files; stopping", im.lim.MaxFiles)
	}
	return nil
}

// storeFile is the on-disk form of imported data.
type storeFile struct {
	Format     int               `json:"format"`
	ImportedAt time.Time         `json:"imported_at"`
	Sources    []Source          `json:"sources"`
	Records    []json.RawMessage `json:"records"`
}

const storeFormat = 1

// DefaultPath is where imported data is kept: $LLMFENCE_VULNDB, else
// vulndb.json in llmfence's per-user data directory (beside the default
// store: $XDG_DATA_HOME/llmfence, ~/.local/share/llmfence, ~/Library/
// Application Support/llmfence, %LocalAppData%\llmfence).
func DefaultPath() (string, error) {
	return defaultPath(os.Getenv, runtime.GOOS, os.UserHomeDir)
}

func defaultPath(getenv func(string) string, goos string, home func() (string, error)) (string, error) {
	if p := getenv(EnvFile); p != "" {
		return p, nil
	}
	const dir, file = "llmfence", "vulndb.json"
	switch goos {
	case "windows":
		if d := getenv("LocalAppData"); d != "" {
			return filepath.Join(d, dir, file), nil
		}
	case "darwin", "ios":
		h, err := home()
		if err != nil || h == "" {
			return "", errors.New("cannot find the home directory; set " + EnvFile)
		}
		return filepath.Join(h, "Library", "Application Support", dir, file), nil
	}
	if d := getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, dir, file), nil
	}
	h, err := home()
	if err != nil || h == "" {
		return "", errors.New("cannot find the home directory; set " + EnvFile)
	}
	return filepath.Join(h, ".local", "share", dir, file), nil
}

// Save merges imported records into the file at path (creating it and
// its directory), replacing records with the same ID unless the saved one
// is newer, or starts over when replace is set. The file is written to a
// temporary name and renamed, so a reader never sees half of it.
func Save(path string, in *Imported, replace bool, now time.Time) (Info, error) {
	byID := map[string]json.RawMessage{}
	mod := map[string]time.Time{}
	var sources []Source
	if !replace {
		if old, err := readStore(path); err == nil {
			for _, r := range old.records {
				byID[r.ID], mod[r.ID] = r.Raw, r.Modified
			}
			sources = old.sources
		} else if !errors.Is(err, fs.ErrNotExist) {
			return Info{}, err
		}
	}
	for _, r := range in.Records {
		if m, ok := mod[r.ID]; ok && m.After(r.Modified) {
			continue
		}
		byID[r.ID], mod[r.ID] = r.Raw, r.Modified
	}
	sources = append(sources, in.Sources...)
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	sf := storeFile{Format: storeFormat, ImportedAt: now.UTC(), Sources: sources}
	for _, id := range ids {
		sf.Records = append(sf.Records, byID[id])
	}
	b, err := json.MarshalIndent(sf, "", " ")
	if err != nil {
		return Info{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return Info{}, fmt.Errorf("cannot create the directory for %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vulndb-*.json")
	if err != nil {
		return Info{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return Info{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return Info{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return Info{}, fmt.Errorf("cannot write %s: %w", path, err)
	}
	st, err := readStore(path)
	if err != nil {
		return Info{}, err
	}
	return st.info(path), nil
}

type stored struct {
	importedAt time.Time
	sources    []Source
	records    []*Record
}

func (s *stored) info(path string) Info {
	in := Info{Origin: path, ImportedAt: s.importedAt, Records: len(s.records), Sources: s.sources}
	for _, src := range s.sources {
		if src.Date.After(in.Date) {
			in.Date = src.Date
		}
	}
	return in
}

func readStore(path string) (*stored, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	var sf storeFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("%s is not llmfence vulnerability data: %w", path, err)
	}
	if sf.Format != storeFormat {
		return nil, fmt.Errorf("%s has format %d; this llmfence reads format %d", path, sf.Format, storeFormat)
	}
	st := &stored{importedAt: sf.ImportedAt, sources: sf.Sources}
	for i, raw := range sf.Records {
		r, err := ParseRecord(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: record %d: %w", path, i, err)
		}
		r.Notes = nil
		st.records = append(st.records, r)
	}
	return st, nil
}

// Open returns the embedded data refreshed by the imported data saved at
// path. A missing file is not an error: the embedded data alone is used.
func Open(path string) (*DB, error) {
	emb, err := loadEmbedded()
	if err != nil {
		return nil, err
	}
	if path == "" {
		return build(emb.products, emb.records, nil, nil)
	}
	st, err := readStore(path)
	if errors.Is(err, fs.ErrNotExist) {
		return build(emb.products, emb.records, nil, nil)
	}
	if err != nil {
		return nil, err
	}
	info := st.info(path)
	return build(emb.products, emb.records, st.records, &info)
}

// OpenDefault returns the data every command judges with: the embedded
// data refreshed by what `llmfence vulndb import` saved at DefaultPath,
// and that path ("" when there is none: then the embedded data alone).
// Unreadable imported data is an error that names the file.
func OpenDefault() (*DB, string, error) {
	path, err := DefaultPath()
	if err != nil {
		db, eerr := Embedded()
		return db, "", eerr
	}
	db, err := Open(path)
	if err != nil {
		return nil, path, fmt.Errorf("reading imported vulnerability data %s: %w (remove the file or re-import)", path, err)
	}
	return db, path, nil
}

// EmbeddedProducts returns the embedded product map.
func EmbeddedProducts() (*Products, error) {
	emb, err := loadEmbedded()
	if err != nil {
		return nil, err
	}
	return emb.products, nil
}

// Export writes every record in use to dir as <id>.json, byte for byte as
// it was read, so the data can be checked with OSV tools or imported
// elsewhere; importing the directory gives the same records back.
func Export(db *DB, dir string) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("cannot create %s: %w", dir, err)
	}
	n := 0
	for _, r := range db.Records() {
		name := strings.Map(func(c rune) rune {
			if c == '/' || c == '\\' || c == 0 {
				return '_'
			}
			return c
		}, r.ID)
		if name == "" || name == "." || name == ".." {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), append(append([]byte(nil), r.Raw...), '\n'), 0o644); err != nil {
			return n, fmt.Errorf("cannot write %s: %w", dir, err)
		}
		n++
	}
	return n, nil
}
