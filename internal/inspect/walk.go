package inspect

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/llmfence/llmfence/internal/verdict"
)

// job is one file to inspect, or a ready-made result (a symlink notice, a
// path that does not exist).
type job struct {
	path    string // path to open
	display string // path to report
	ready   *Result
}

// Inspect inspects every file under paths (files, and directories walked
// recursively) with Options.Workers in parallel and calls emit with each
// result, in the order of the walk. An error from emit stops the run and is
// returned; so is ctx's error.
func (in *Inspector) Inspect(ctx context.Context, paths []string, emit func(*Result) error) (Summary, error) {
	var sum Summary
	jobs := in.collect(ctx, paths)
	if err := ctx.Err(); err != nil {
		return sum, err
	}
	return sum, in.run(ctx, jobs, func(r *Result) error {
		sum.add(r, in.opts.FailOn)
		return emit(r)
	})
}

// run processes jobs in parallel and emits results in job order.
func (in *Inspector) run(ctx context.Context, jobs []job, emit func(*Result) error) error {
	ctx, cancel := context.WithCancel(ctx)
	out := make([]chan *Result, len(jobs))
	for i := range out {
		out[i] = make(chan *Result, 1)
	}
	sem := make(chan struct{}, in.opts.Workers)
	var wg sync.WaitGroup
	spawned := make(chan struct{})
	go func() {
		defer close(spawned)
		for i, j := range jobs {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if j.ready != nil {
					j.ready.finish()
					out[i] <- j.ready
					return
				}
				out[i] <- in.InspectFile(ctx, j.path, j.display)
			}()
		}
	}()
	// On return, stop spawning, then wait for the files in flight.
	defer func() {
		cancel()
		<-spawned
		wg.Wait()
	}()
	for i := range jobs {
		var r *Result
		select {
		case r = <-out[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := emit(r); err != nil {
			return err
		}
	}
	return nil
}

// collect walks paths into a job list.
func (in *Inspector) collect(ctx context.Context, paths []string) []job {
	var jobs []job
	for _, p := range paths {
		if ctx.Err() != nil {
			return jobs
		}
		st, err := os.Stat(p) // a link named on the command line is followed
		if err != nil {
			jobs = append(jobs, job{ready: &Result{Path: p, Format: FormatUnknown, Error: fmt.Sprint(unwrapPathError(err))}})
			continue
		}
		if !st.IsDir() && !st.Mode().IsRegular() {
			// A FIFO would block the read forever, a device never ends:
			// refuse them without opening.
			jobs = append(jobs, job{ready: &Result{Path: p, Format: FormatUnknown, Error: fmt.Sprintf("refused: %s, not a regular file (not opened)", fileKind(st.Mode()))}})
			continue
		}
		if !st.IsDir() {
			jobs = append(jobs, job{path: p, display: p})
			continue
		}
		visited := map[string]bool{}
		jobs = in.walkDir(ctx, p, p, visited, jobs)
	}
	return jobs
}

// walkDir adds the files under dir. root is the directory the user named:
// links that resolve outside it are reported, not followed, unless
// FollowSymlinks.
func (in *Inspector) walkDir(ctx context.Context, root, dir string, visited map[string]bool, jobs []job) []job {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		realRoot = root
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		if visited[real] {
			return jobs
		}
		visited[real] = true
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			jobs = append(jobs, job{ready: &Result{Path: p, Format: FormatUnknown, Error: fmt.Sprintf("cannot read: %v", unwrapPathError(err))}})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			jobs = in.symlink(ctx, root, realRoot, p, visited, jobs)
			return nil
		case d.Type().IsRegular():
			jobs = append(jobs, job{path: p, display: p})
		default:
			in.log.Debug("skipping non-regular file", "path", p, "type", d.Type().String())
		}
		return nil
	})
	return jobs
}

func (in *Inspector) symlink(ctx context.Context, root, realRoot, p string, visited map[string]bool, jobs []job) []job {
	target, err := filepath.EvalSymlinks(p)
	if err != nil {
		dest, _ := os.Readlink(p)
		return append(jobs, job{ready: &Result{Path: p, Format: "symlink", Error: fmt.Sprintf("dangling symbolic link to %s", dest)}})
	}
	st, err := os.Stat(target)
	if err != nil {
		return append(jobs, job{ready: &Result{Path: p, Format: "symlink", Error: fmt.Sprintf("cannot inspect link target: %v", unwrapPathError(err))}})
	}
	inside := within(realRoot, target)
	if !inside && !in.opts.FollowSymlinks {
		f := in.cat.New("INS-007", fmt.Sprintf("points to %s", target), -1)
		return append(jobs, job{ready: &Result{Path: p, Format: "symlink", Findings: []verdict.Finding{f}, Metadata: map[string]any{"target": target}}})
	}
	if st.IsDir() {
		if inside {
			return jobs // walked anyway
		}
		return in.walkDir(ctx, root, target, visited, jobs)
	}
	if !st.Mode().IsRegular() {
		return jobs
	}
	return append(jobs, job{path: p, display: p})
}

// within reports whether path p is root or below it (both resolved).
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return false
	}
	return rel == "." || (rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)))
}

// fileKind names a file mode's type for messages.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeIrregular != 0:
		return "irregular file"
	}
	return "special file"
}
