package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/llmfence/llmfence/internal/service"
)

// Limits of the Linux reader.
const (
	maxCmdline    = 256 << 10
	maxEnviron    = 1 << 20
	maxStatus     = 64 << 10
	maxCgroup     = 64 << 10
	maxPasswd     = 8 << 20
	maxSmallFile  = 64 << 10
	maxPIDs       = 1 << 22
	defaultMaxFDs = 1 << 20
)

// Linux is the Reader for Linux. It reads /proc (processes, their
// environment, open sockets and each network namespace's TCP table),
// /etc/passwd, /etc/os-release, /etc/machine-id and the systemd unit
// directories, all below Root ("/" on a live machine; tests point it at a
// fixture tree). Nothing is written and no process is signalled or traced.
type Linux struct {
	Root string
	// EUID decides whether the audit runs privileged (0 = root).
	EUID int
	// MaxFDs bounds the open files read per process.
	MaxFDs int

	selfOnce sync.Once
	self     Self
	selfErr  error
}

// NewLinux returns a reader of the machine below root.
func NewLinux(root string) *Linux {
	return &Linux{Root: root, EUID: os.Geteuid(), MaxFDs: defaultMaxFDs}
}

func (l *Linux) path(parts ...string) string {
	return filepath.Join(append([]string{l.Root}, parts...)...)
}

func (l *Linux) proc(pid int, parts ...string) string {
	return l.path(append([]string{"proc", strconv.Itoa(pid)}, parts...)...)
}

// Self implements Reader.
func (l *Linux) Self(ctx context.Context) (Self, error) {
	l.selfOnce.Do(func() {
		link, err := os.Readlink(l.path("proc", "self"))
		if err != nil {
			l.selfErr = fmt.Errorf("reading /proc/self: %w", err)
			return
		}
		pid, err := strconv.Atoi(filepath.Base(link))
		if err != nil {
			l.selfErr = fmt.Errorf("/proc/self points at %q", link)
			return
		}
		s := Self{PID: pid, Privileged: l.EUID == 0}
		s.NetNS, _ = os.Readlink(l.proc(pid, "ns", "net"))
		s.MntNS, _ = os.Readlink(l.proc(pid, "ns", "mnt"))
		if !s.Privileged {
			if opt := l.hidepid(); opt != "" {
				s.Notes = append(s.Notes, msg("audit.note.hidepid", "option", opt))
			}
		}
		l.self = s
	})
	return l.self, l.selfErr
}

// hidepid returns the hidepid= option of the /proc mount, if any.
func (l *Linux) hidepid() string {
	data, err := readBounded(l.path("proc", "self", "mounts"), maxPasswd)
	if err != nil && !errors.As(err, new(errTooLarge)) {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "/proc" || f[2] != "proc" {
			continue
		}
		for _, o := range strings.Split(f[3], ",") {
			if strings.HasPrefix(o, "hidepid=") && o != "hidepid=0" && o != "hidepid=off" {
				return o
			}
		}
	}
	return ""
}

// Machine implements Reader.
func (l *Linux) Machine(ctx context.Context) (Machine, error) {
	first := func(p string) string {
		b, _ := readBounded(p, maxSmallFile)
		return strings.TrimSpace(string(b))
	}
	m := Machine{
		Hostname:  first(l.path("proc", "sys", "kernel", "hostname")),
		Kernel:    first(l.path("proc", "sys", "kernel", "osrelease")),
		MachineID: first(l.path("etc", "machine-id")),
		OS:        "Linux",
	}
	if b, err := readBounded(l.path("etc", "os-release"), maxSmallFile); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"'`)
			}
		}
	}
	return m, nil
}

// PIDs implements Reader.
func (l *Linux) PIDs(ctx context.Context) ([]int, error) {
	f, err := os.Open(l.path("proc"))
	if err != nil {
		return nil, fmt.Errorf("reading /proc: %w", err)
	}
	defer f.Close()
	var pids []int
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
		if errors.Is(err, io.EOF) || len(pids) >= maxPIDs {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading /proc: %w", err)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// Process implements Reader.
func (l *Linux) Process(ctx context.Context, pid int) (*Process, error) {
	p := &Process{PID: pid, UID: -1}
	cmd, err := readBounded(l.proc(pid, "cmdline"), maxCmdline)
	switch {
	case gone(err):
		return nil, ErrGone
	case errors.As(err, new(errTooLarge)):
		p.unread("command line", fmt.Errorf("longer than %d bytes; the rest was not read", maxCmdline))
	case err != nil:
		p.unread("command line", err)
	}
	if err == nil || errors.As(err, new(errTooLarge)) {
		if len(bytes.Trim(cmd, "\x00")) == 0 {
			return nil, ErrNoCommand
		}
		p.Argv = strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	}
	st, err := readBounded(l.proc(pid, "status"), maxStatus)
	if gone(err) {
		return nil, ErrGone
	}
	if err != nil {
		p.unread("status", err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		switch {
		case k == "Name" && len(f) > 0:
			p.Name = f[0]
		case k == "PPid" && len(f) > 0:
			p.PPID, _ = strconv.Atoi(f[0])
		case k == "Uid" && len(f) > 1:
			if uid, err := strconv.Atoi(f[1]); err == nil {
				p.UID = uid
			}
		}
	}
	if exe, err := os.Readlink(l.proc(pid, "exe")); err == nil {
		p.Exe = strings.TrimSuffix(exe, " (deleted)")
	} else if !gone(err) {
		p.unread("executable", err)
	} else if l.exited(pid) {
		return nil, ErrGone
	}
	if cwd, err := os.Readlink(l.proc(pid, "cwd")); err == nil {
		p.Cwd = cwd
	} else if !gone(err) {
		p.unread("working directory", err)
	}
	return p, nil
}

// exited reports whether the process's /proc directory is gone.
func (l *Linux) exited(pid int) bool {
	_, err := os.Stat(l.proc(pid))
	return gone(err)
}

// Inspect implements Reader.
func (l *Linux) Inspect(ctx context.Context, p *Process) error {
	env, err := readBounded(l.proc(p.PID, "environ"), maxEnviron)
	switch {
	case gone(err) && l.exited(p.PID):
		return ErrGone
	case err != nil && !errors.As(err, new(errTooLarge)):
		p.unread("environment", err)
	default:
		if err != nil {
			p.unread("environment", fmt.Errorf("longer than %d bytes; the rest was not read", maxEnviron))
		}
		p.Env = map[string]string{}
		for _, kv := range strings.Split(string(env), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				p.Env[k] = v
			}
		}
	}
	if cg, err := readBounded(l.proc(p.PID, "cgroup"), maxCgroup); err == nil {
		p.Cgroup = cgroupPath(string(cg))
	} else if !gone(err) {
		p.unread("control group", err)
	}
	for _, ns := range []struct {
		name string
		dst  *string
	}{{"net", &p.NetNS}, {"mnt", &p.MntNS}} {
		link, err := os.Readlink(l.proc(p.PID, "ns", ns.name))
		switch {
		case err == nil:
			*ns.dst = link
		case gone(err) && l.exited(p.PID):
			return ErrGone
		default:
			p.unread(ns.name+" namespace", err)
		}
	}
	if root, err := os.Readlink(l.proc(p.PID, "root")); err == nil {
		p.Root = root
	} else if !gone(err) {
		p.unread("root directory", err)
	}
	return nil
}

// cgroupPath picks the process's control group from /proc/<pid>/cgroup:
// the unified (cgroup v2) entry, else the systemd hierarchy's, else the
// first.
func cgroupPath(s string) string {
	var first, systemd string
	for _, line := range strings.Split(s, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if parts[1] == "name=systemd" {
			systemd = parts[2]
		}
		if first == "" {
			first = parts[2]
		}
	}
	if systemd != "" {
		return systemd
	}
	return first
}

// Sockets implements Reader.
func (l *Linux) Sockets(ctx context.Context, p *Process) ([]uint64, error) {
	dir := l.proc(p.PID, "fd")
	f, err := os.Open(dir)
	if err != nil {
		if gone(err) {
			return nil, ErrGone
		}
		return nil, err
	}
	defer f.Close()
	max := l.MaxFDs
	if max <= 0 {
		max = defaultMaxFDs
	}
	var out []uint64
	seen := 0
	for {
		names, err := f.Readdirnames(1024)
		for _, n := range names {
			if seen++; seen > max {
				return out, fmt.Errorf("more than %d open files; the rest were not read", max)
			}
			link, err := os.Readlink(filepath.Join(dir, n))
			if err != nil {
				continue // closed meanwhile
			}
			if s, ok := strings.CutPrefix(link, "socket:["); ok {
				if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
					out = append(out, ino)
				}
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, err
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

// Listening implements Reader. It reads /proc/<pid>/net/tcp and tcp6: the
// TCP tables of the process's own network namespace.
func (l *Linux) Listening(ctx context.Context, p *Process) ([]Listener, error) {
	var out []Listener
	for _, fam := range []struct {
		file string
		v6   bool
	}{{"tcp", false}, {"tcp6", true}} {
		f, err := os.Open(l.proc(p.PID, "net", fam.file))
		if err != nil {
			if gone(err) && l.exited(p.PID) {
				return nil, ErrGone
			}
			if fam.v6 && gone(err) {
				continue // IPv6 disabled
			}
			return out, fmt.Errorf("reading the TCP table: %w", err)
		}
		ls, err := parseProcNetTCP(ctx, bufio.NewReader(f), fam.v6)
		f.Close()
		out = append(out, ls...)
		if err != nil {
			return out, fmt.Errorf("reading the TCP table: %w", err)
		}
	}
	return out, nil
}

// HostPath implements Reader: a process in another mount namespace (a
// container) or under another root sees its files through
// /proc/<pid>/root.
func (l *Linux) HostPath(p *Process, path string) string {
	if p == nil {
		return l.path(path)
	}
	self, _ := l.Self(context.Background())
	sameNS := p.MntNS != "" && p.MntNS == self.MntNS
	if (sameNS || p.MntNS == "") && (p.Root == "" || p.Root == "/") {
		return l.path(path)
	}
	return l.proc(p.PID, "root", path)
}

// Executable implements Reader.
func (l *Linux) Executable(p *Process) string {
	if p.Exe == "" {
		return ""
	}
	return l.proc(p.PID, "exe")
}

// Users implements Reader.
func (l *Linux) Users(ctx context.Context) ([]User, error) {
	data, err := readBounded(l.path("etc", "passwd"), maxPasswd)
	if err != nil {
		return nil, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	var out []User
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		out = append(out, User{Name: f[0], UID: uid, Home: f[5]})
	}
	return out, nil
}

// System unit directories, highest precedence first.
var systemUnitDirs = []string{
	"etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system",
	"usr/lib/systemd/system", "lib/systemd/system",
}

// Units implements Reader: system units, then per-user units in every
// home directory (~/.config/systemd/user) and the global user units.
// Environment files are read only for units want keeps.
func (l *Linux) Units(ctx context.Context, want func(argv []string) bool) ([]Unit, []service.Message) {
	var units []Unit
	var notes []service.Message
	var sys []string
	for _, d := range systemUnitDirs {
		sys = append(sys, l.path(d))
	}
	u, n := l.unitsIn(ctx, sys, want, false, "")
	units, notes = append(units, u...), append(notes, n...)
	u, n = l.unitsIn(ctx, []string{l.path("etc/systemd/user"), l.path("usr/lib/systemd/user")}, want, true, "")
	units, notes = append(units, u...), append(notes, n...)
	users, _ := l.Users(ctx)
	seenHome := map[string]bool{}
	var hidden []string
	for _, usr := range users {
		if !usableHome(usr.Home) || seenHome[usr.Home] {
			continue
		}
		seenHome[usr.Home] = true
		dir := l.path(usr.Home, ".config/systemd/user")
		if _, err := os.Stat(dir); err != nil {
			if !gone(err) {
				hidden = append(hidden, fmt.Sprintf("%s (%s)", usr.Name, errText(err)))
			}
			continue
		}
		u, n := l.unitsIn(ctx, []string{dir}, want, true, usr.Name)
		units, notes = append(units, u...), append(notes, n...)
	}
	if len(hidden) > 0 {
		notes = append(notes, msg("audit.note.user_units", args([]string{"n", strconv.Itoa(len(hidden))}, list("users", hidden, 5, ", "))...))
	}
	return units, notes
}

// usableHome reports whether a passwd home directory can hold per-user
// files (not "/", not a placeholder).
func usableHome(h string) bool {
	return filepath.IsAbs(h) && h != "/" && !strings.HasPrefix(h, "/nonexistent") && h != "/dev/null"
}

func (l *Linux) unitsIn(ctx context.Context, dirs []string, want func([]string) bool, userUnits bool, owner string) ([]Unit, []service.Message) {
	var notes []service.Message
	main := map[string]string{}    // unit name → file (first directory wins)
	dropins := map[string]string{} // "unit.d/name.conf" → file (first wins)
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			if !gone(err) {
				notes = append(notes, msg("audit.note.unit_dir", args([]string{"path", l.rel(d)}, reason("reason", errText(err)))...))
			}
			continue
		}
		if len(ents) > maxUnitFiles {
			notes = append(notes, msg("audit.note.unit_dir_full", "path", l.rel(d), "n", strconv.Itoa(len(ents)), "max", strconv.Itoa(maxUnitFiles)))
			ents = ents[:maxUnitFiles]
		}
		for _, e := range ents {
			name := e.Name()
			switch {
			case strings.HasSuffix(name, ".service"):
				if _, ok := main[name]; !ok {
					main[name] = filepath.Join(d, name)
				}
			case strings.HasSuffix(name, ".service.d"):
				confs, err := os.ReadDir(filepath.Join(d, name))
				if err != nil {
					notes = append(notes, msg("audit.note.unread_path", args([]string{"path", l.rel(filepath.Join(d, name))}, reason("reason", errText(err)))...))
					continue
				}
				for i, c := range confs {
					if i >= maxDropIns {
						break
					}
					if strings.HasSuffix(c.Name(), ".conf") {
						k := name + "/" + c.Name()
						if _, ok := dropins[k]; !ok {
							dropins[k] = filepath.Join(d, name, c.Name())
						}
					}
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
	}
	names := make([]string, 0, len(main))
	for n := range main {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []Unit
	for _, name := range names {
		file := main[name]
		data, err := readBounded(file, maxUnitFile)
		if err != nil {
			if !gone(err) { // a dangling alias is no unit
				notes = append(notes, msg("audit.note.unit", args([]string{"path", l.rel(file)}, reason("reason", errText(err)))...))
			}
			continue
		}
		if len(bytes.TrimSpace(data)) == 0 {
			continue // masked (a link to /dev/null) or empty
		}
		var st unitState
		st.apply(data, l.rel(file))
		var applied []string
		var keys []string
		for k := range dropins {
			if strings.HasPrefix(k, name+".d/") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			b, err := readBounded(dropins[k], maxUnitFile)
			if err != nil {
				notes = append(notes, msg("audit.note.drop_in", args([]string{"path", l.rel(dropins[k])}, reason("reason", errText(err)))...))
				continue
			}
			st.apply(b, l.rel(dropins[k]))
			applied = append(applied, l.rel(dropins[k]))
		}
		if len(st.execStart) == 0 || !want(st.execStart) {
			continue
		}
		u := Unit{
			Name: name, Path: l.rel(file), DropIns: applied, User: st.user, UserUnit: userUnits,
			Owner: owner, ExecStart: st.execStart, WorkDir: st.workDir,
			Env: map[string]string{}, EnvSource: map[string]string{}, EnvSrc: map[string]service.Message{}, Notes: st.notes,
		}
		for _, a := range st.env {
			u.Env[a.key], u.EnvSource[a.key], u.EnvSrc[a.key] = a.val, "Environment= in "+a.source, msg("audit.source.environment_in", "path", a.source)
		}
		// EnvironmentFile= overrides Environment= (systemd.exec(5)).
		for _, ref := range st.envFiles {
			if strings.Contains(ref.path, "%") {
				u.Notes = append(u.Notes, msg("audit.note.env_file_specifier", "path", ref.path))
				continue
			}
			b, err := readBounded(l.path(ref.path), maxUnitFile)
			if err != nil {
				if !(ref.optional && gone(err)) {
					u.Notes = append(u.Notes, msg("audit.note.env_file", args([]string{"path", ref.path}, reason("reason", errText(err)))...))
				}
				continue
			}
			for _, kv := range parseEnvFile(b) {
				u.Env[kv[0]], u.EnvSource[kv[0]], u.EnvSrc[kv[0]] = kv[1], "EnvironmentFile "+ref.path, msg("audit.source.environment_file", "path", ref.path)
			}
		}
		out = append(out, u)
	}
	return out, notes
}

// rel shows a path below Root as the machine's absolute path.
func (l *Linux) rel(p string) string {
	r, err := filepath.Rel(l.Root, p)
	if err != nil || strings.HasPrefix(r, "..") {
		return p
	}
	return "/" + filepath.ToSlash(r)
}
