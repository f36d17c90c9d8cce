package audit

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// Prober confirms what answers on one of the machine's own loopback ports,
// with read-only requests (the scan's fingerprint code; see
// FingerprintProber).
type Prober interface {
	Probe(ctx context.Context, addr netip.AddrPort) (*service.Service, error)
}

// StoreInspector runs `llmfence inspect` over a model store (see
// InspectorFor). layout is the store's layout (ollama, huggingface, ...).
type StoreInspector interface {
	InspectStore(ctx context.Context, layout, dir string) (InspectSummary, []service.Finding, error)
}

// Options configure one audit. Reader is required; zero values of the rest
// take the defaults in brackets.
type Options struct {
	Reader  Reader
	Catalog *Catalog // [the embedded runtimes.yaml]
	// Judge rates what the audit finds, as scans rate it. Required: give
	// the one built with the user's vulnerability data (risk.NewJudgeWith
	// over vulndb.OpenDefault), so an audit and a scan agree.
	Judge *risk.Judge
	// Prober, when set, asks each runtime that listens in the audit's own
	// network namespace what it is, on loopback [no probe].
	Prober Prober
	// Inspector, when set, inspects every store (--inspect) [not run].
	Inspector StoreInspector
	// MaxStoreEntries bounds the directory entries walked per store [500,000].
	MaxStoreEntries int
	// ReaderName names the OS reader in the machine record ["linux"].
	ReaderName string
	// Version is llmfence's version for the machine record.
	Version string
	Now     func() time.Time
	Logger  *slog.Logger
}

// maxProbePorts bounds the loopback ports probed per runtime.
const maxProbePorts = 3

// Run audits the machine the Reader reads. It fails only when the machine
// cannot be read at all; everything it could not read is named in the
// records' notes and makes them incomplete.
func Run(ctx context.Context, opts Options) (*Result, error) {
	a, err := newAuditor(opts)
	if err != nil {
		return nil, err
	}
	return a.run(ctx)
}

type auditor struct {
	Options
	self     Self
	machine  *MachineRecord
	users    map[int]User
	procs    map[int]*Process
	netCache map[string]netTable
	units    []Unit
	words    words // the audit's messages in English, for the records
}

type netTable struct {
	listeners []Listener
	err       error
}

func newAuditor(o Options) (*auditor, error) {
	if o.Reader == nil {
		return nil, errors.New("audit: no reader for this operating system")
	}
	if o.Catalog == nil {
		c, err := LoadCatalog()
		if err != nil {
			return nil, err
		}
		o.Catalog = c
	}
	if o.Judge == nil {
		return nil, errors.New("audit: no judge to rate what it finds")
	}
	if o.ReaderName == "" {
		o.ReaderName = "linux"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := newWords()
	if err != nil {
		return nil, err
	}
	return &auditor{Options: o, users: map[int]User{}, procs: map[int]*Process{}, netCache: map[string]netTable{}, words: w}, nil
}

// runtimeState is a runtime while it is audited.
type runtimeState struct {
	spec    *RuntimeSpec
	rec     *Runtime
	proc    *Process // nil for a service definition that is not running
	members []*Process
	unit    *Unit
	values  []value
	facts   facts
	svc     *service.Service // the probe's answer, when there is one
	home    string
	exposed bool
	listen  []netip.AddrPort
}

func (a *auditor) run(ctx context.Context) (*Result, error) {
	r := a.Reader
	self, err := r.Self(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	a.self = self
	m, _ := r.Machine(ctx)
	a.machine = &MachineRecord{
		Kind: KindMachine, Host: m.Hostname, MachineID: m.MachineID, OS: m.OS, Kernel: m.Kernel,
		Reader: a.ReaderName, Privileged: self.Privileged, AuditedAt: a.Now().UTC(), Llmfence: a.Version,
		Complete: true,
	}
	for _, n := range self.Notes {
		a.machineNote(n)
	}
	users, err := r.Users(ctx)
	if err != nil {
		a.machineNote(msg("audit.note.users", reason("reason", errText(err))...))
	}
	for _, u := range users {
		if _, dup := a.users[u.UID]; !dup {
			a.users[u.UID] = u
		}
	}

	runtimes, err := a.findProcesses(ctx)
	if err != nil {
		return nil, err
	}
	units, notes := r.Units(ctx, func(argv []string) bool {
		spec, helper := a.Catalog.identify("", argv, "")
		return spec != nil && !helper
	})
	a.units = units
	for _, n := range notes {
		a.machineNote(n)
	}
	for _, rt := range runtimes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a.readRuntime(ctx, rt)
	}
	runtimes = slices.DeleteFunc(runtimes, func(rt *runtimeState) bool { return rt.rec == nil })
	runtimes = append(runtimes, a.idleUnits(ctx, runtimes)...)

	stores := a.findStores(ctx, runtimes)
	for _, rt := range runtimes {
		if err := a.judgeRuntime(rt, stores); err != nil {
			return nil, err
		}
	}
	res := &Result{Machine: a.machine}
	for _, rt := range runtimes {
		res.Runtimes = append(res.Runtimes, rt.rec)
	}
	for _, st := range stores {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		a.judgeStore(ctx, st)
		res.Stores = append(res.Stores, st.rec)
	}
	a.machine.Runtimes, a.machine.Stores = len(res.Runtimes), len(res.Stores)
	a.machine.Risk = service.SeverityNone
	for _, rec := range res.Runtimes {
		a.rollUp(rec.Risk, rec.Complete)
	}
	for _, rec := range res.Stores {
		a.rollUp(rec.Risk, rec.Complete)
	}
	if !a.machine.Complete && a.machine.Risk.Rank() <= service.SeverityInfo.Rank() {
		a.machine.Risk = RiskUnknown
	}
	return res, nil
}

func (a *auditor) rollUp(r service.Severity, complete bool) {
	if r.Rank() > a.machine.Risk.Rank() {
		a.machine.Risk = r
	}
	if !complete {
		a.machine.Complete = false
	}
}

// machineNote notes on the machine what could not be read.
func (a *auditor) machineNote(m service.Message) {
	a.words.noted(&a.machine.Notes, &a.machine.NoteMsgs, m)
	a.machine.Complete = false
}

func (a *auditor) userName(uid int) string {
	if uid < 0 {
		return ""
	}
	if u, ok := a.users[uid]; ok {
		return u.Name
	}
	return strconv.Itoa(uid)
}

// findProcesses reads every process, identifies the runtimes and folds
// helper processes (and servers started by a server of the same runtime)
// into the runtime they belong to.
func (a *auditor) findProcesses(ctx context.Context) ([]*runtimeState, error) {
	pids, err := a.Reader.PIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	unreadable := 0
	for _, pid := range pids {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		p, err := a.Reader.Process(ctx, pid)
		switch {
		case errors.Is(err, ErrGone), errors.Is(err, ErrNoCommand):
			continue
		case err != nil:
			unreadable++
			continue
		}
		a.procs[pid] = p
		if p.Argv == nil {
			unreadable++
		}
	}
	if unreadable > 0 {
		a.machineNote(msg("audit.note.cmdlines", "n", strconv.Itoa(unreadable)))
	}
	type match struct {
		spec   *RuntimeSpec
		helper bool
	}
	matched := map[int]match{}
	for pid, p := range a.procs {
		if p.Argv == nil {
			continue
		}
		if spec, helper := a.Catalog.identify(p.Exe, p.Argv, p.Cwd); spec != nil {
			matched[pid] = match{spec, helper}
		}
	}
	// serverAncestor: the nearest ancestor that is a server of the same
	// runtime.
	serverAncestor := func(pid int, spec *RuntimeSpec) int {
		seen := map[int]bool{pid: true}
		for p := a.procs[pid]; p != nil; {
			pp := p.PPID
			if pp <= 0 || seen[pp] || len(seen) > 64 {
				return 0
			}
			seen[pp] = true
			if mm, ok := matched[pp]; ok && mm.spec == spec && !mm.helper {
				return pp
			}
			p = a.procs[pp]
		}
		return 0
	}
	root := func(pid int, spec *RuntimeSpec) int {
		for {
			up := serverAncestor(pid, spec)
			if up == 0 {
				return pid
			}
			pid = up
		}
	}
	byRoot := map[int]*runtimeState{}
	var pidsSorted []int
	for pid := range matched {
		pidsSorted = append(pidsSorted, pid)
	}
	sort.Ints(pidsSorted)
	for _, pid := range pidsSorted {
		mm := matched[pid]
		if mm.helper && serverAncestor(pid, mm.spec) == 0 {
			a.Logger.Debug("helper process without its server", "pid", pid, "runtime", mm.spec.ID)
			continue
		}
		rp := root(pid, mm.spec)
		rt := byRoot[rp]
		if rt == nil {
			rt = &runtimeState{spec: mm.spec, proc: a.procs[rp]}
			byRoot[rp] = rt
		}
		if rp != pid {
			rt.members = append(rt.members, a.procs[pid])
		}
	}
	var out []*runtimeState
	for _, pid := range pidsSorted {
		if rt := byRoot[pid]; rt != nil {
			out = append(out, rt)
		}
	}
	return out, nil
}

// readRuntime reads a running runtime's environment, sockets, unit and
// settings. A runtime whose server exited meanwhile is dropped (rec nil).
func (a *auditor) readRuntime(ctx context.Context, rt *runtimeState) {
	p := rt.proc
	if err := a.Reader.Inspect(ctx, p); errors.Is(err, ErrGone) {
		a.Logger.Debug("runtime exited while it was read", "pid", p.PID)
		return
	}
	rec := &Runtime{
		Kind: KindRuntime, Host: a.machine.Host, Product: rt.spec.ID, PID: p.PID, UID: p.UID,
		User: a.userName(p.UID), Running: true, Exe: p.Exe, Cmdline: redactArgv(rt.spec, p.Argv),
		NetNS: p.NetNS, Listen: []string{}, Settings: map[string]string{}, SettingSources: map[string]string{},
		Findings: []service.Finding{}, Complete: true,
	}
	rt.rec = rec
	for _, m := range rt.members {
		rec.PIDs = append(rec.PIDs, m.PID)
	}
	if parent := a.procs[p.PPID]; parent != nil && parent.Argv != nil {
		if spec, _ := a.Catalog.identify(parent.Exe, parent.Argv, parent.Cwd); spec != nil && spec != rt.spec {
			rec.StartedBy = fmt.Sprintf("%s (pid %d)", spec.Name, parent.PID) // a name and a number: the same in every language
		}
	}
	rec.Container = containerOf(p.Cgroup)
	for _, name := range sortedKeys(p.Unread) {
		a.runtimeNote(rec, msg("audit.note.unread", args(part("part", name), []string{"pid", strconv.Itoa(p.PID), "user", orUnknown(rec.User)},
			reason("reason", p.Unread[name]))...))
	}

	// Settings: the process's own environment and command line; the unit
	// fills in what the environment does not show.
	if p.Env != nil {
		rt.values = append(rt.values, readEnvSettings(rt.spec, p.Env, fromEnvironment)...)
		rt.home = p.Env["HOME"]
	}
	rt.values = append(rt.values, readFlagSettings(rt.spec, p.Argv)...)
	if rt.home == "" {
		if u, ok := a.users[p.UID]; ok {
			rt.home = u.Home
		}
	}
	a.linkUnit(rt)
	if !a.readListeners(ctx, rt) {
		a.Logger.Debug("runtime exited while it was read", "pid", p.PID)
		rt.rec = nil
		return
	}
	a.settle(rt)
	a.probe(ctx, rt)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// runtimeNote notes on a runtime what could not be read: its record is
// incomplete.
func (a *auditor) runtimeNote(rec *Runtime, m service.Message) {
	a.runtimeInfo(rec, m)
	rec.Complete = false
}

// runtimeInfo notes on a runtime something a person should know.
func (a *auditor) runtimeInfo(rec *Runtime, m service.Message) {
	a.words.noted(&rec.Notes, &rec.NoteMsgs, m)
}

// readListeners finds the runtime's listening sockets: the socket inodes
// its processes hold, looked up in the TCP table of their network
// namespace (read once per namespace). It returns false when the runtime's
// server exited meanwhile.
func (a *auditor) readListeners(ctx context.Context, rt *runtimeState) bool {
	rec := rt.rec
	inodes := map[uint64]bool{}
	socketsRead := true
	for _, m := range append([]*Process{rt.proc}, rt.members...) {
		inos, err := a.Reader.Sockets(ctx, m)
		if errors.Is(err, ErrGone) {
			if m == rt.proc {
				return false
			}
			continue
		}
		if err != nil {
			socketsRead = false
			a.runtimeNote(rec, msg("audit.note.sockets", args([]string{"pid", strconv.Itoa(m.PID), "user", orUnknown(a.userName(m.UID))}, reason("reason", errText(err)))...))
		}
		for _, i := range inos {
			inodes[i] = true
		}
	}
	key := rt.proc.NetNS
	if key == "" {
		key = fmt.Sprintf("pid %d", rt.proc.PID)
	}
	tab, ok := a.netCache[key]
	if !ok {
		ls, err := a.Reader.Listening(ctx, rt.proc)
		if errors.Is(err, ErrGone) {
			return false
		}
		tab = netTable{ls, err}
		a.netCache[key] = tab
	}
	if tab.err != nil {
		socketsRead = false
		a.runtimeNote(rec, msg("audit.note.tcp_table", args([]string{"pid", strconv.Itoa(rt.proc.PID)}, reason("reason", errText(tab.err)))...))
	}
	seen := map[netip.AddrPort]bool{}
	var candidates []string
	for _, l := range tab.listeners {
		if inodes[l.Inode] && !seen[l.Addr] {
			seen[l.Addr] = true
			rt.listen = append(rt.listen, l.Addr)
		}
		if !socketsRead && l.UID == rt.proc.UID && rt.proc.UID >= 0 {
			candidates = append(candidates, l.Addr.String())
		}
	}
	sort.Slice(rt.listen, func(i, j int) bool { return rt.listen[i].Compare(rt.listen[j]) < 0 })
	for _, l := range rt.listen {
		rec.Listen = append(rec.Listen, l.String())
	}
	switch {
	case !socketsRead:
		rec.Exposure = ExposureUnknown
		if len(candidates) > 0 {
			sort.Strings(candidates)
			a.runtimeInfo(rec, msg("audit.note.candidates", args([]string{"user", orUnknown(rec.User)}, list("addrs", candidates, 10, ", "))...))
		}
	case len(rt.listen) == 0:
		rec.Exposure = ExposureNotListening
	default:
		rec.Exposure = ExposureLoopback
		for _, l := range rt.listen {
			switch addrScope(l.Addr()) {
			case scopeAll:
				rec.Exposure = ExposureAll
			case scopeNetwork:
				if rec.Exposure != ExposureAll {
					rec.Exposure = ExposureNetwork
				}
			}
		}
		rt.exposed = rec.Exposure != ExposureLoopback
	}
	if rt.proc.NetNS != "" && a.self.NetNS != "" && rt.proc.NetNS != a.self.NetNS && len(rt.listen) > 0 {
		a.runtimeInfo(rec, msg("audit.note.other_netns", "netns", rt.proc.NetNS))
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// containerOf recognises a container from a control-group path.
var containerRE = []struct {
	engine string
	re     *regexp.Regexp
}{
	{"kubernetes", regexp.MustCompile(`kubepods.*?(?:cri-containerd-|crio-|docker-|/)([0-9a-f]{64})`)},
	{"docker", regexp.MustCompile(`(?:/docker/|docker-)([0-9a-f]{64})`)},
	{"podman", regexp.MustCompile(`libpod-(?:conmon-)?([0-9a-f]{64})`)},
	{"containerd", regexp.MustCompile(`cri-containerd-([0-9a-f]{64})`)},
	{"cri-o", regexp.MustCompile(`crio-([0-9a-f]{64})`)},
	{"lxc", regexp.MustCompile(`/lxc(?:\.payload)?[./]([^/]+)`)},
}

func containerOf(cgroup string) *Container {
	for _, c := range containerRE {
		if m := c.re.FindStringSubmatch(cgroup); m != nil {
			id := m[1]
			if len(id) == 64 {
				id = id[:12]
			}
			return &Container{Engine: c.engine, ID: id}
		}
	}
	return nil
}

// unitOf names the systemd unit a control group belongs to.
func unitOf(cgroup string) (name string, user bool) {
	parts := strings.Split(cgroup, "/")
	for i := len(parts) - 1; i >= 0; i-- {
		if strings.HasSuffix(parts[i], ".service") && !strings.HasPrefix(parts[i], "user@") {
			return parts[i], strings.Contains(cgroup, "/user@")
		}
	}
	return "", false
}

// redactArgv replaces the values of secret flags in a command line: the
// spec's secret settings, and any flag whose name says it holds a
// credential (--hf-token, --password, ...).
func redactArgv(spec *RuntimeSpec, argv []string) []string {
	if argv == nil {
		return nil
	}
	out := append([]string{}, argv...)
	for i := 1; i < len(out); i++ {
		a := out[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, hasVal := strings.Cut(a, "=")
		if !secretName(strings.TrimLeft(name, "-")) {
			continue
		}
		if hasVal {
			out[i] = name + "=REDACTED"
		} else if i+1 < len(out) && !strings.HasPrefix(out[i+1], "-") {
			out[i+1] = "REDACTED"
		}
	}
	for _, s := range spec.Settings {
		if s.From != "flag" || !s.Secret {
			continue
		}
		names := append([]string{s.Name}, s.Aliases...)
		for i := 1; i < len(out); i++ {
			for _, n := range names {
				switch {
				case out[i] == n && i+1 < len(out) && !s.Bool:
					out[i+1] = "REDACTED"
				case strings.HasPrefix(out[i], n+"="):
					out[i] = n + "=REDACTED"
				}
			}
		}
	}
	return out
}

// versionFromBuild reads a Go runtime's version from its executable's
// build information: the -X VAR=VERSION of the recorded -ldflags, else the
// main module's version.
func versionFromBuild(exe string, spec *RuntimeSpec) string {
	if exe == "" || spec.GoModule == "" {
		return ""
	}
	bi, err := buildinfo.ReadFile(exe)
	if err != nil || bi.Main.Path != spec.GoModule {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key != "-ldflags" {
			continue
		}
		if m := regexp.MustCompile(`-X[= ]'?` + regexp.QuoteMeta(spec.VersionVar) + `=([^ ']+)`).FindStringSubmatch(s.Value); m != nil {
			return strings.TrimPrefix(m[1], "v")
		}
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return strings.TrimPrefix(v, "v")
	}
	return ""
}

// homeDirs are the users' home directories worth looking in.
func (a *auditor) homeDirs() []User {
	var out []User
	seen := map[string]bool{}
	uids := make([]int, 0, len(a.users))
	for uid := range a.users {
		uids = append(uids, uid)
	}
	sort.Ints(uids)
	for _, uid := range uids {
		u := a.users[uid]
		if !usableHome(u.Home) || seen[u.Home] {
			continue
		}
		seen[u.Home] = true
		out = append(out, u)
	}
	return out
}

// exists reports whether a path exists, and an error other than "does not
// exist" when it cannot tell.
func exists(p string) (bool, error) {
	_, err := os.Stat(p)
	switch {
	case err == nil:
		return true, nil
	case gone(err):
		return false, nil
	}
	return false, err
}

func joinHome(home, rel string) string { return filepath.Join(home, filepath.FromSlash(rel)) }
