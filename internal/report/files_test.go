package report

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestOutputFilesAreOwnerOnly(t *testing.T) {
	// A permissive umask must not widen the files.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	check := func(path string) {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != OutputPerm {
			t.Errorf("%s: mode %v, want %v", filepath.Base(path), st.Mode().Perm(), OutputPerm)
		}
	}

	created := filepath.Join(dir, "new.jsonl")
	f, err := CreateOutput(created)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	check(created)

	existing := filepath.Join(dir, "old.csv")
	if err := os.WriteFile(existing, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	if f, err = CreateOutput(existing); err != nil {
		t.Fatal(err)
	}
	f.Close()
	check(existing)
	if b, _ := os.ReadFile(existing); len(b) != 0 {
		t.Errorf("existing file not truncated: %q", b)
	}

	atomic := filepath.Join(dir, "report.html")
	if err := WriteFileAtomic(atomic, func(f *os.File) error { _, err := f.WriteString("<html>"); return err }); err != nil {
		t.Fatal(err)
	}
	check(atomic)
	// A failed write leaves the old file as it was and no temporary file.
	if err := WriteFileAtomic(atomic, func(*os.File) error { return errors.New("boom") }); err == nil {
		t.Fatal("a failed write reported success")
	}
	if b, _ := os.ReadFile(atomic); string(b) != "<html>" {
		t.Errorf("failed write changed the file: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 {
		t.Errorf("%d entries in the directory, want 3 (a temporary file left?)", len(ents))
	}

	// Devices are written as they are, not chmod-ed.
	if f, err = CreateOutput(os.DevNull); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, _ := os.Stat(os.DevNull); st.Mode().Perm() == OutputPerm {
		t.Errorf("%s was restricted", os.DevNull)
	}
}
