package report

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// OutputPerm is the permission of every file llmfence writes for its
// user: --report, -o/--output, --bom, --manifest, disclosure bundles,
// ground-truth files. Reports can hold system prompts, model names, API
// keys' names and personal data read from scanned servers, so only the
// owner may read them (0600), whatever the umask. Loosen it by hand
// (chmod) when a report is meant to be shared.
const OutputPerm fs.FileMode = 0o600

// CreateOutput creates path for writing (truncating an existing file)
// with OutputPerm. An existing regular file is set to OutputPerm too;
// devices, FIFOs and terminals (-o /dev/stdout) are written as they are.
func CreateOutput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, OutputPerm)
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm() != OutputPerm {
		if err := f.Chmod(OutputPerm); err != nil {
			f.Close()
			return nil, fmt.Errorf("cannot restrict %s to its owner: %w", path, err)
		}
	}
	return f, nil
}

// WriteFileAtomic writes path through a temporary file in the same
// directory, renamed over path once write succeeded, so a reader never
// sees half a report and a failed write leaves the old file. The file
// gets OutputPerm.
func WriteFileAtomic(path string, write func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".llmfence-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(OutputPerm); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := write(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
