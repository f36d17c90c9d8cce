package gibberishtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Kind names a family of clean text on a Debian system.
type Kind string

// The kinds of clean text the corpus readers find.
const (
	// Docs: the text files under /usr/share/doc (README, NEWS, changelogs,
	// copyright files, ...), gzip'd or not.
	Docs Kind = "docs"
	// Man: English manual pages (/usr/share/man/man*), groff stripped.
	Man Kind = "man"
	// Japanese: Japanese manual pages (/usr/share/man/ja) and the
	// Japanese translations in /usr/share/locale/ja/LC_MESSAGES/*.mo.
	Japanese Kind = "japanese"
	// German: German manual pages (/usr/share/man/de), groff stripped.
	German Kind = "german"
	// Code: Python sources (/usr/lib/python3*) and shell, Perl and other
	// scripts under /usr/share/doc/*/examples.
	Code Kind = "code"
)

// Packages are the Debian packages the corpus readers take their text
// from unless Corpus.System is set: packages every Debian system the
// tests run on has (Priority required or important, man-db, and the
// Python standard library that python3 brings), so that what a test
// reads does not change when other packages are installed or removed.
// Their Japanese and German manual pages are the packages' own
// translations (dpkg, apt, man-db, passwd, login, debianutils,
// base-passwd ship them); their Japanese message catalogues come with
// them too. A name may hold a * (the Python version).
var Packages = []string{
	"apt", "base-files", "base-passwd", "bash", "coreutils", "debianutils", "diffutils",
	"dpkg", "findutils", "grep", "gzip", "libc-bin", "libc6", "login", "man-db", "passwd",
	"sed", "tar", "util-linux", "libpython3.*-minimal", "libpython3.*-stdlib",
}

// Part selects documents by HeldOut.
type Part uint8

const (
	// All documents.
	All Part = iota
	// Build: the documents HeldOut is false for (the reference model's
	// tables are built from these).
	Build
	// Test: the documents HeldOut is true for (never in the tables).
	Test
)

// HeldOut reports whether the file at path (a system path, as Doc.Path
// gives it) is one of the quarter of files held out of the reference
// model: decided by a hash of the path alone, so the same files are held
// out whatever else is installed.
func HeldOut(path string) bool {
	h := uint32(2166136261)
	for i := 0; i < len(path); i++ {
		h = (h ^ uint32(path[i])) * 16777619
	}
	return h%4 == 3
}

// Corpus reads clean text installed on the machine.
type Corpus struct {
	// Root is prefixed to every system path ("" reads the real system;
	// tests of the readers point it at a fake tree).
	Root string
	// System reads every file of a kind installed (walking its
	// directories) instead of the files of Packages: more text, but what
	// is read depends on what is installed (the model generator and the
	// benchmarks use it; tests must not).
	System bool
	// Packages overrides the package list (nil: Packages).
	Packages []string
	// Part selects held-out or build documents (default All).
	Part Part
}

// Doc is one document: where it came from (the system path, without
// Corpus.Root) and its text.
type Doc struct {
	Path string
	Text string
}

// ErrNoText means a kind of text is not installed on this machine.
var ErrNoText = errors.New("no text of this kind installed")

// kindDirs are the system directories a kind's files live in, with a
// filter on the path.
func kindFiles(k Kind, p string) bool {
	switch k {
	case Docs:
		return strings.HasPrefix(p, "/usr/share/doc/") && !strings.Contains(p, "/examples/")
	case Man:
		return strings.HasPrefix(p, "/usr/share/man/man")
	case Japanese:
		return strings.HasPrefix(p, "/usr/share/man/ja/") ||
			strings.HasPrefix(p, "/usr/share/locale/ja/LC_MESSAGES/") && strings.HasSuffix(p, ".mo")
	case German:
		return strings.HasPrefix(p, "/usr/share/man/de/")
	case Code:
		return strings.HasPrefix(p, "/usr/lib/python3") && strings.HasSuffix(p, ".py") ||
			strings.HasPrefix(p, "/usr/share/doc/") && strings.Contains(p, "/examples/")
	}
	return false
}

// systemDirs are the directories Corpus.System walks for a kind.
func systemDirs(c Corpus, k Kind) []string {
	switch k {
	case Docs:
		return []string{"/usr/share/doc"}
	case Man:
		return []string{"/usr/share/man"}
	case Japanese:
		return []string{"/usr/share/man/ja", "/usr/share/locale/ja/LC_MESSAGES"}
	case German:
		return []string{"/usr/share/man/de"}
	case Code:
		roots, _ := filepath.Glob(filepath.Join(c.Root, "/usr/lib/python3*"))
		out := []string{"/usr/share/doc"}
		for _, r := range roots {
			out = append(out, strings.TrimPrefix(r, c.Root))
		}
		return out
	}
	return nil
}

// files lists the system paths of kind k's files, sorted.
func (c Corpus) files(k Kind) ([]string, error) {
	var paths []string
	if c.System {
		for _, dir := range systemDirs(c, k) {
			err := filepath.WalkDir(filepath.Join(c.Root, dir), func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
						return nil
					}
					return err
				}
				if d.Type().IsRegular() {
					if sp := strings.TrimPrefix(p, c.Root); kindFiles(k, sp) {
						paths = append(paths, sp)
					}
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	} else {
		pkgs := c.Packages
		if pkgs == nil {
			pkgs = Packages
		}
		var missing []string
		for _, name := range pkgs {
			lists, _ := filepath.Glob(filepath.Join(c.Root, "/var/lib/dpkg/info", name+".list"))
			more, _ := filepath.Glob(filepath.Join(c.Root, "/var/lib/dpkg/info", name+":*.list"))
			lists = append(lists, more...)
			if len(lists) == 0 {
				missing = append(missing, name)
				continue
			}
			for _, l := range lists {
				data, err := os.ReadFile(l)
				if err != nil {
					return nil, err
				}
				for _, p := range strings.Split(string(data), "\n") {
					if kindFiles(k, p) {
						paths = append(paths, p)
					}
				}
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: packages %s not installed (apt-get install %s)", ErrNoText, strings.Join(missing, ", "), strings.Join(missing, " "))
		}
	}
	slices.Sort(paths)
	return slices.Compact(paths), nil
}

// Read returns documents of kind k in a fixed order (sorted paths), at
// most maxBytes of text in all (0: no limit). Files that are not valid
// UTF-8 text, symbolic links and files over 4 MiB are skipped.
func (c Corpus) Read(k Kind, maxBytes int) ([]Doc, error) {
	var out []Doc
	total := 0
	add := func(p, text string) bool {
		text = strings.TrimSpace(text)
		if len(text) < 40 {
			return true
		}
		out = append(out, Doc{Path: p, Text: text})
		total += len(text)
		return maxBytes <= 0 || total < maxBytes
	}
	switch k {
	case Docs, Man, German, Japanese, Code:
	default:
		return nil, errors.New("unknown kind " + string(k))
	}
	paths, err := c.files(k)
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if c.Part == Build && HeldOut(p) || c.Part == Test && !HeldOut(p) {
			continue
		}
		data, err := c.readFile(p)
		if err != nil {
			continue
		}
		more := true
		switch {
		case strings.HasSuffix(p, ".mo"):
			msgs := MoStrings(data)
			// Messages are short; a document is a run of about 2 KB.
			var b strings.Builder
			for _, m := range msgs {
				if !hasJapanese(m) {
					continue
				}
				b.WriteString(m)
				b.WriteByte('\n')
				if b.Len() > 2000 {
					if more = add(p, b.String()); !more {
						break
					}
					b.Reset()
				}
			}
			if more {
				more = add(p, b.String())
			}
		case !isText(data):
		case strings.HasPrefix(p, "/usr/share/man/"):
			more = add(p, StripGroff(string(data)))
		default:
			more = add(p, string(data))
		}
		if !more {
			break
		}
	}
	if len(out) == 0 {
		return nil, ErrNoText
	}
	return out, nil
}

// readFile reads a system path (gunzipped), at most 4 MiB; symbolic
// links are not followed.
func (c Corpus) readFile(p string) ([]byte, error) {
	full := filepath.Join(c.Root, p)
	st, err := os.Lstat(full)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	return readMaybeGzip(full, 4<<20)
}

func readMaybeGzip(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, errors.New("too large")
	}
	return data, nil
}

// isText: valid UTF-8 with no NUL and few control characters.
func isText(data []byte) bool {
	if len(data) == 0 || !utf8.Valid(data) || bytes.IndexByte(data, 0) >= 0 {
		return false
	}
	ctl := 0
	for _, c := range data {
		if c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' {
			ctl++
		}
	}
	return ctl*100 < len(data)
}

func hasJapanese(s string) bool {
	for _, r := range s {
		if r >= 0x3040 && r <= 0x30ff || r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

var (
	groffFont   = regexp.MustCompile(`\\f(?:\[[^\]]*\]|\(..|.)`)
	groffSize   = regexp.MustCompile(`\\s[-+]?\d+`)
	groffNamed  = regexp.MustCompile(`\\\((..)`)
	groffBrack  = regexp.MustCompile(`\\\[([^\]]*)\]`)
	groffString = regexp.MustCompile(`\\\*(?:\(..|\[[^\]]*\]|.)`)
	groffMisc   = regexp.MustCompile(`\\[&|^:%,/!{}]`)
)

// StripGroff turns the source of a manual page into plain text: requests
// (lines starting with . or ') are dropped, except that the text of
// section headings and font macros (.SH, .SS, .B, .I, .BR, ...) is kept,
// and inline escapes are removed or replaced.
func StripGroff(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(line, ".\\\"") || strings.HasPrefix(line, "'\\\"") || strings.HasPrefix(line, "\\\"") {
			continue
		}
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			f := strings.SplitN(line[1:], " ", 2)
			switch f[0] {
			case "SH", "SS", "B", "I", "BR", "BI", "IB", "IR", "RB", "RI", "TP", "IP", "SM", "SB":
				if len(f) == 2 {
					line = strings.ReplaceAll(f[1], "\"", "")
				} else {
					continue
				}
			default:
				continue
			}
		}
		line = groffFont.ReplaceAllString(line, "")
		line = groffSize.ReplaceAllString(line, "")
		line = groffNamed.ReplaceAllStringFunc(line, func(m string) string { return groffChar(m[2:]) })
		line = groffBrack.ReplaceAllStringFunc(line, func(m string) string { return groffChar(m[2 : len(m)-1]) })
		line = groffString.ReplaceAllString(line, "")
		line = groffMisc.ReplaceAllString(line, "")
		line = strings.ReplaceAll(line, `\-`, "-")
		line = strings.ReplaceAll(line, `\e`, `\`)
		line = strings.ReplaceAll(line, `\ `, " ")
		line = strings.ReplaceAll(line, `\~`, " ")
		line = strings.ReplaceAll(line, `\0`, " ")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func groffChar(name string) string {
	switch name {
	case "em", "en", "hy", "mi":
		return "-"
	case "lq", "rq", "dq":
		return `"`
	case "oq", "cq", "aq":
		return "'"
	case "bu":
		return "*"
	case "co":
		return "(c)"
	case "rg":
		return "(R)"
	case "tm":
		return "(TM)"
	case "ga":
		return "`"
	case "ti", "a~":
		return "~"
	case "ha", "a^":
		return "^"
	case "rs":
		return `\`
	case "<=", ">=":
		return name
	}
	return ""
}

// MoStrings returns the translations (msgstr, plural forms split) of a
// GNU gettext .mo catalogue, skipping the header entry. Every count and
// offset is checked against the data; a malformed catalogue yields what
// could be read.
func MoStrings(data []byte) []string {
	if len(data) < 28 {
		return nil
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(data) {
	case 0x950412de:
		bo = binary.LittleEndian
	case 0xde120495:
		bo = binary.BigEndian
	default:
		return nil
	}
	n := int(bo.Uint32(data[8:]))
	tr := int(bo.Uint32(data[16:]))
	if n < 0 || n > len(data)/8 || tr < 0 || tr > len(data)-8*n {
		return nil
	}
	var out []string
	for i := range n {
		l := int(bo.Uint32(data[tr+8*i:]))
		off := int(bo.Uint32(data[tr+8*i+4:]))
		if l <= 0 || off < 0 || off > len(data) || l > len(data)-off {
			continue
		}
		s := string(data[off : off+l])
		if strings.Contains(s, "Content-Type:") || !utf8.ValidString(s) {
			continue
		}
		for _, part := range strings.Split(s, "\x00") {
			if part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}
