package gibberishtest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
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
	// Code: Python sources (/usr/lib/python3*) and shell, Perl and other
	// scripts under /usr/share/doc/*/examples.
	Code Kind = "code"
)

// Corpus reads clean text installed on the machine.
type Corpus struct {
	// Root is prefixed to every system path ("" reads the real system;
	// tests of the readers point it at a fake tree).
	Root string
}

// Doc is one document: where it came from and its text.
type Doc struct {
	Path string
	Text string
}

// ErrNoText means a kind of text is not installed on this machine.
var ErrNoText = errors.New("no text of this kind installed")

// Read returns documents of kind k in a fixed order (sorted paths), at
// most maxBytes of text in all (0: no limit). Files that are not valid
// UTF-8 text are skipped.
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
	var err error
	switch k {
	case Docs:
		err = c.walk("/usr/share/doc", func(p string, data []byte) bool {
			if strings.Contains(p, "/examples/") || !isText(data) {
				return true
			}
			return add(p, string(data))
		})
	case Man:
		for _, sec := range []string{"man1", "man5", "man7", "man8", "man3", "man2", "man4", "man6"} {
			err = c.walk("/usr/share/man/"+sec, func(p string, data []byte) bool {
				if !isText(data) {
					return true
				}
				return add(p, StripGroff(string(data)))
			})
			if err != nil || (maxBytes > 0 && total >= maxBytes) {
				break
			}
		}
	case Japanese:
		err = c.walk("/usr/share/man/ja", func(p string, data []byte) bool {
			if !isText(data) {
				return true
			}
			return add(p, StripGroff(string(data)))
		})
		if err == nil && (maxBytes <= 0 || total < maxBytes) {
			err = c.walk("/usr/share/locale/ja/LC_MESSAGES", func(p string, data []byte) bool {
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
						if !add(p, b.String()) {
							return false
						}
						b.Reset()
					}
				}
				return add(p, b.String())
			})
		}
	case Code:
		roots, _ := filepath.Glob(filepath.Join(c.Root, "/usr/lib/python3*"))
		for _, r := range roots {
			err = c.walk(strings.TrimPrefix(r, c.Root), func(p string, data []byte) bool {
				if !strings.HasSuffix(p, ".py") || !isText(data) {
					return true
				}
				return add(p, string(data))
			})
			if err != nil || (maxBytes > 0 && total >= maxBytes) {
				break
			}
		}
		if err == nil && (maxBytes <= 0 || total < maxBytes) {
			err = c.walk("/usr/share/doc", func(p string, data []byte) bool {
				if !strings.Contains(p, "/examples/") || !isText(data) {
					return true
				}
				return add(p, string(data))
			})
		}
	default:
		return nil, errors.New("unknown kind " + string(k))
	}
	if err != nil {
		return out, err
	}
	if len(out) == 0 {
		return nil, ErrNoText
	}
	return out, nil
}

// ReadDir returns the manual pages (groff stripped) or text files under
// dir, in sorted order, at most maxBytes of text (0: no limit).
func (c Corpus) ReadDir(dir string, maxBytes int) ([]Doc, error) {
	var out []Doc
	total := 0
	err := c.walk(dir, func(p string, data []byte) bool {
		if !isText(data) {
			return true
		}
		text := string(data)
		if strings.Contains(p, "/man/") {
			text = StripGroff(text)
		}
		text = strings.TrimSpace(text)
		if len(text) < 40 {
			return true
		}
		out = append(out, Doc{Path: p, Text: text})
		total += len(text)
		return maxBytes <= 0 || total < maxBytes
	})
	if err == nil && len(out) == 0 {
		err = ErrNoText
	}
	return out, err
}

// walk calls fn with the content (gunzipped) of every regular file under
// dir, in sorted order, until fn returns false. Files over 4 MiB are skipped.
func (c Corpus) walk(dir string, fn func(path string, data []byte) bool) error {
	var paths []string
	err := filepath.WalkDir(filepath.Join(c.Root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(paths)
	for _, p := range paths {
		data, err := readMaybeGzip(p, 4<<20)
		if err != nil {
			continue
		}
		if !fn(p, data) {
			return nil
		}
	}
	return nil
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
