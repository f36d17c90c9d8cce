// Command inspectbench measures `llmfence inspect` against sha256sum on one
// large GGUF file, and pickle scanning throughput on a generated corpus.
//
// It writes (once) a GGUF file of pseudo-random tensor data (default
// 2 GiB, not sparse), warms the page cache, then alternates sha256sum and
// `llmfence inspect --format json` on it, keeping each one's best wall time
// and peak RSS. The ratio sha256sum time / llmfence time is the figure of
// merit (target ≥ 0.8: inspection costs at most a quarter more than
// hashing). Then it writes a corpus of pickles (state-dict-like, with
// tensor-sized byte payloads; a few malicious) and reports files/s and MB/s
// of `llmfence inspect` over the directory.
//
//	go build -o /tmp/llmfence ./cmd/llmfence
//	go run ./bench/inspectbench -llmfence /tmp/llmfence [-size 2GiB] [-dir DIR] [-runs 3]
//
// This is a benchmark, not a test: figures depend on the machine.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	var (
		bin     = flag.String("llmfence", "", "llmfence binary to measure (default: go build ./cmd/llmfence into the work dir)")
		dir     = flag.String("dir", "", "work directory (default: a new temporary directory, removed afterwards)")
		sizeArg = flag.String("size", "2GiB", "size of the GGUF file (e.g. 512MiB, 2GiB)")
		runs    = flag.Int("runs", 3, "timed runs of each command; the best is kept")
		pickles = flag.Int("pickles", 2000, "files in the pickle corpus")
	)
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(context.Background(), *bin, *dir, *sizeArg, *runs, *pickles); err != nil {
		log.Error("inspectbench failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin, dir, sizeArg string, runs, nPickles int) error {
	size, err := parseSize(sizeArg)
	if err != nil {
		return err
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "inspectbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if bin == "" {
		bin = filepath.Join(dir, "llmfence")
		fmt.Println("building llmfence ...")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/llmfence").CombinedOutput(); err != nil {
			return fmt.Errorf("go build (run from the repository root): %v\n%s", err, out)
		}
	}
	if out, err := exec.CommandContext(ctx, bin, "inspect", "--help").CombinedOutput(); err != nil {
		return fmt.Errorf("%s has no inspect command (is newInspectCmd registered in main.go?): %v\n%s", bin, err, out)
	}

	gguf := filepath.Join(dir, "big.gguf")
	if st, err := os.Stat(gguf); err != nil || st.Size() != size {
		fmt.Printf("writing %s (%d bytes) ...\n", gguf, size)
		if err := writeGGUF(gguf, size); err != nil {
			return err
		}
	}
	// Warm the page cache so both commands read from memory, not disk.
	if _, _, err := measure(ctx, "sha256sum", gguf); err != nil {
		return fmt.Errorf("sha256sum: %w", err)
	}
	var shaBest, fenceBest time.Duration
	var shaRSS, fenceRSS int64
	for i := 0; i < runs; i++ {
		d, rss, err := measure(ctx, "sha256sum", gguf)
		if err != nil {
			return fmt.Errorf("sha256sum: %w", err)
		}
		if shaBest == 0 || d < shaBest {
			shaBest = d
		}
		shaRSS = max(shaRSS, rss)
		d, rss, err = measure(ctx, bin, "inspect", "--format", "json", "--fail-on", "critical", gguf)
		if err != nil {
			return fmt.Errorf("llmfence inspect: %w", err)
		}
		if fenceBest == 0 || d < fenceBest {
			fenceBest = d
		}
		fenceRSS = max(fenceRSS, rss)
	}
	mb := float64(size) / (1 << 20)
	fmt.Printf("\nGGUF file: %.0f MiB, best of %d runs, page cache warm\n", mb, runs)
	fmt.Printf("  sha256sum          %8.3fs  %7.0f MiB/s  peak RSS %6.1f MiB\n", shaBest.Seconds(), mb/shaBest.Seconds(), float64(shaRSS)/1024)
	fmt.Printf("  llmfence inspect   %8.3fs  %7.0f MiB/s  peak RSS %6.1f MiB\n", fenceBest.Seconds(), mb/fenceBest.Seconds(), float64(fenceRSS)/1024)
	fmt.Printf("  speed ratio (sha256sum time / llmfence time): %.2f (target >= 0.80)\n", shaBest.Seconds()/fenceBest.Seconds())

	pdir := filepath.Join(dir, "pickles")
	total, err := writePickles(pdir, nPickles)
	if err != nil {
		return err
	}
	var pBest time.Duration
	var pRSS int64
	for i := 0; i < runs; i++ {
		d, rss, err := measure(ctx, bin, "inspect", "--format", "json", "--fail-on", "critical", pdir)
		if err != nil && !isExit(err, 1) {
			return fmt.Errorf("llmfence inspect (pickles): %w", err)
		}
		if pBest == 0 || d < pBest {
			pBest = d
		}
		pRSS = max(pRSS, rss)
	}
	pmb := float64(total) / (1 << 20)
	fmt.Printf("\nPickle corpus: %d files, %.1f MiB, best of %d runs\n", nPickles, pmb, runs)
	fmt.Printf("  llmfence inspect   %8.3fs  %7.0f files/s  %7.1f MiB/s  peak RSS %6.1f MiB\n", pBest.Seconds(), float64(nPickles)/pBest.Seconds(), pmb/pBest.Seconds(), float64(pRSS)/1024)
	return nil
}

// measure runs a command with its output discarded and returns its wall
// time and peak RSS in KiB. Exit status 1 (findings) is returned as an
// *exec.ExitError after the figures are taken.
func measure(ctx context.Context, name string, args ...string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = io.Discard
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	var rss int64
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			rss = ru.Maxrss
		}
	}
	if err != nil && !isExit(err, 1) {
		return d, rss, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return d, rss, err
}

func isExit(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-size %q: want a positive size such as 2GiB", s)
	}
	return n * mult, nil
}

// writeGGUF writes a valid GGUF v3 file of exactly size bytes: one KV
// (general.architecture), one F32 tensor filling the file with pseudo-random
// data (not sparse: every block is written).
func writeGGUF(path string, size int64) error {
	const align = 32
	var h []byte
	h = append(h, "GGUF"...)
	h = binary.LittleEndian.AppendUint32(h, 3)
	h = binary.LittleEndian.AppendUint64(h, 1) // tensors
	h = binary.LittleEndian.AppendUint64(h, 1) // kv
	h = appendStr(h, "general.architecture")
	h = binary.LittleEndian.AppendUint32(h, 8) // string
	h = appendStr(h, "llama")
	h = appendStr(h, "weight")
	h = binary.LittleEndian.AppendUint32(h, 1) // n_dims
	dimAt := len(h)
	h = binary.LittleEndian.AppendUint64(h, 0) // patched below
	h = binary.LittleEndian.AppendUint32(h, 0) // F32
	h = binary.LittleEndian.AppendUint64(h, 0) // offset
	for len(h)%align != 0 {
		h = append(h, 0)
	}
	n := (size - int64(len(h))) / 4
	if n <= 0 {
		return fmt.Errorf("size %d too small", size)
	}
	binary.LittleEndian.PutUint64(h[dimAt:], uint64(n))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(h); err != nil {
		f.Close()
		return err
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	left := n * 4
	for left > 0 {
		rng.Read(buf)
		k := min(int64(len(buf)), left)
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		left -= k
	}
	// pad to the exact size (the tensor is a multiple of 4 bytes)
	if pad := size - int64(len(h)) - n*4; pad > 0 {
		f.Write(make([]byte, pad))
	}
	return f.Close()
}

func appendStr(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// writePickles writes n protocol-2 pickles shaped like small state dicts:
// an OrderedDict of named entries, each a BINBYTES payload standing in for
// tensor data (1 KiB to 256 KiB). Every 20th file also imports os.system.
func writePickles(dir string, n int) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var total int64
	for i := range n {
		var b []byte
		b = append(b, 0x80, 2)
		b = append(b, "ccollections\nOrderedDict\n"...)
		b = append(b, 0x29, 0x52) // EMPTY_TUPLE, REDUCE
		b = append(b, 'q', 0)     // BINPUT 0
		b = append(b, '(')        // MARK
		entries := 4 + rng.IntN(12)
		for j := range entries {
			key := fmt.Sprintf("layers.%d.weight", j)
			b = append(b, 'X')
			b = binary.LittleEndian.AppendUint32(b, uint32(len(key)))
			b = append(b, key...)
			sz := 1<<10 + rng.IntN(255<<10)
			b = append(b, 'B')
			b = binary.LittleEndian.AppendUint32(b, uint32(sz))
			payload := make([]byte, sz)
			for k := range payload {
				payload[k] = byte(rng.Uint32())
			}
			b = append(b, payload...)
		}
		b = append(b, 'u') // SETITEMS
		if i%20 == 0 {
			b = append(b, '0')
			b = append(b, "cos\nsystem\n"...)
			b = append(b, 'X', 2, 0, 0, 0, 'i', 'd', 0x85, 'R', '0')
		}
		b = append(b, '.')
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%05d.pkl", i)), b, 0o644); err != nil {
			return 0, err
		}
		total += int64(len(b))
	}
	return total, nil
}
