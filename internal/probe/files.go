package probe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/llmfence/llmfence/internal/probe/packs"
)

// ReadTriggersFile reads backdoor candidates from the file at path (see
// ReadTriggers).
func ReadTriggersFile(path string) ([]TriggerCandidate, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return ReadTriggers(fh, path)
}

// ReadCanariesFile reads memorisation tests from the file at path (see
// ReadCanaries).
func ReadCanariesFile(path string) ([]CanarySpec, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return ReadCanaries(fh, path)
}

// ReadUserPack loads the probe pack in the file at path (at most
// packs.MaxPackBytes) and the reference a run records for it: its path
// and SHA-256, which a resumed run checks.
func ReadUserPack(path string) (*packs.Pack, PackRef, error) {
	b, err := ReadFileMax(path, packs.MaxPackBytes)
	if err != nil {
		return nil, PackRef{}, err
	}
	p, err := packs.Load(bytes.NewReader(b), path)
	if err != nil {
		return nil, PackRef{}, err
	}
	sum := sha256.Sum256(b)
	return p, PackRef{Path: path, SHA256: hex.EncodeToString(sum[:])}, nil
}

// ReadFileMax reads the file at path, refusing one larger than max bytes.
func ReadFileMax(path string, max int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}
