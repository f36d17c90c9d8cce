package gibberishtest

import (
	"compress/gzip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fakeRoot writes a system tree: files (system path -> content; .gz
// paths are gzipped) and the dpkg file lists of packages (name -> its
// system paths).
func fakeRoot(t *testing.T, root string, files map[string]string, pkgs map[string][]string) {
	t.Helper()
	for p, text := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(full)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(p, ".gz") {
			zw := gzip.NewWriter(f)
			zw.Write([]byte(text))
			zw.Close()
		} else {
			f.WriteString(text)
		}
		f.Close()
	}
	info := filepath.Join(root, "var/lib/dpkg/info")
	os.MkdirAll(info, 0o755)
	for name, paths := range pkgs {
		// Directories are listed too, as dpkg does.
		list := "/.\n/usr\n/usr/share\n/usr/share/doc\n" + strings.Join(paths, "\n") + "\n"
		if err := os.WriteFile(filepath.Join(info, name+".list"), []byte(list), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCorpusIgnoresOtherPackages: what Read returns depends only on the
// files of the listed packages: installing another package (documents,
// manual pages and Japanese manual pages that sort before and among the
// listed ones, a binary file, a huge file) changes nothing, while a
// System read sees it.
func TestCorpusIgnoresOtherPackages(t *testing.T) {
	para := strings.Repeat("The daemon reads its configuration file at start and writes a log line. ", 3)
	base := map[string]string{
		"/usr/share/doc/coreutils/README":           "coreutils " + para,
		"/usr/share/doc/coreutils/NEWS.gz":          "NEWS " + para,
		"/usr/share/man/man1/ls.1.gz":               ".TH LS 1\n.SH NAME\nls \\- list directory contents\n" + para,
		"/usr/share/man/ja/man1/ls.1.gz":            ".TH LS 1\n.SH 名前\nls \\- ディレクトリの内容をリスト表示する。設定ファイルを読み込みます。\n",
		"/usr/share/man/de/man1/ls.1.gz":            ".TH LS 1\n.SH BEZEICHNUNG\nls \\- Verzeichnisinhalte auflisten und die Konfiguration lesen\n",
		"/usr/lib/python3.11/json/__init__.py":      "def dumps(obj):\n    \"\"\"Serialize obj to a JSON formatted str.\"\"\"\n    return _default_encoder.encode(obj)\n",
		"/usr/share/doc/coreutils/examples/demo.sh": "#!/bin/sh\nfor f in *.txt; do\n  wc -l \"$f\"\ndone\n",
	}
	pkgs := map[string][]string{"coreutils": nil, "libpython3.11-stdlib:amd64": nil}
	for p := range base {
		if strings.HasPrefix(p, "/usr/lib/python3") {
			pkgs["libpython3.11-stdlib:amd64"] = append(pkgs["libpython3.11-stdlib:amd64"], p)
		} else {
			pkgs["coreutils"] = append(pkgs["coreutils"], p)
		}
	}
	c := func(root string) Corpus {
		return Corpus{Root: root, Packages: []string{"coreutils", "libpython3.*-stdlib"}}
	}
	kinds := []Kind{Docs, Man, Japanese, German, Code}
	read := func(c Corpus) map[Kind][]Doc {
		out := map[Kind][]Doc{}
		for _, k := range kinds {
			docs, err := c.Read(k, 0)
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			out[k] = docs
		}
		return out
	}
	clean := t.TempDir()
	fakeRoot(t, clean, base, pkgs)
	want := read(c(clean))
	for _, k := range kinds {
		if len(want[k]) == 0 {
			t.Fatalf("%s: nothing read from the fake tree", k)
		}
		for _, d := range want[k] {
			if strings.HasPrefix(d.Path, clean) || !strings.HasPrefix(d.Path, "/usr/") {
				t.Errorf("%s: path %q is not a system path", k, d.Path)
			}
		}
	}
	// The same tree with an odd package installed beside it (as CI
	// installs p7zip, chromium or postgresql): sorted before, between
	// and after the listed files.
	extra := map[string]string{
		"/usr/share/doc/a7zip/README":            "Lorem ipsum Xq9v zzkw ptqq " + para,
		"/usr/share/doc/coreutils-extra/THANKS":  "Alice Bobson Carol Dee Ezekiel Fnord Gwyneth " + para,
		"/usr/share/doc/zzz/changelog.gz":        "changelog " + para,
		"/usr/share/doc/zzz/binary.dat":          "\x00\x01\x02\x03 not text",
		"/usr/share/man/man1/7z.1.gz":            ".TH 7Z 1\n" + para,
		"/usr/share/man/ja/man1/7z.1.gz":         ".TH 7Z 1\n圧縮ファイルを作成します。設定ファイルを読み込みます。\n",
		"/usr/share/man/de/man1/7z.1.gz":         ".TH 7Z 1\nDateien komprimieren und die Konfiguration lesen\n",
		"/usr/lib/python3/dist-packages/odd.py":  "import os\nprint(os.getcwd())\n# an odd module that is not the standard library\n",
		"/usr/share/locale/ja/LC_MESSAGES/7z.mo": "not a catalogue",
		"/usr/share/doc/a7zip/examples/run.sh":   "#!/bin/sh\n7z a out.7z *\necho done with the archive\n",
	}
	both := map[string]string{}
	for k, v := range base {
		both[k] = v
	}
	for k, v := range extra {
		both[k] = v
	}
	withExtra := map[string][]string{"p7zip-full": nil}
	for k, v := range pkgs {
		withExtra[k] = v
	}
	for p := range extra {
		withExtra["p7zip-full"] = append(withExtra["p7zip-full"], p)
	}
	more := t.TempDir()
	fakeRoot(t, more, both, withExtra)
	if got := read(c(more)); !reflect.DeepEqual(got, want) {
		t.Errorf("another package changed what is read:\n%v\nwant\n%v", got, want)
	}
	sys, err := Corpus{Root: more, System: true}.Read(Docs, 0)
	if err != nil || len(sys) <= len(want[Docs]) {
		t.Errorf("a System read does not see the other package: %d documents (%v)", len(sys), err)
	}
	// A listed package that is missing is an error that names it.
	if _, err := (Corpus{Root: clean, Packages: []string{"coreutils", "man-db"}}).Read(Man, 0); err == nil || !strings.Contains(err.Error(), "man-db") {
		t.Errorf("missing package: %v", err)
	}
	// Held-out and build parts split the documents by path alone.
	test, _ := Corpus{Root: more, Packages: []string{"coreutils"}, Part: Test}.Read(Docs, 0)
	build, _ := Corpus{Root: more, Packages: []string{"coreutils"}, Part: Build}.Read(Docs, 0)
	if len(test)+len(build) != len(want[Docs]) {
		t.Errorf("parts: %d held out + %d build != %d", len(test), len(build), len(want[Docs]))
	}
	for _, d := range test {
		if !HeldOut(d.Path) {
			t.Errorf("%s in the test part is not held out", d.Path)
		}
	}
}
