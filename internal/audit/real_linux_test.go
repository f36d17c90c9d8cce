//go:build linux

package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/llmfence/llmfence/internal/fingerprint"
	"github.com/llmfence/llmfence/internal/ggufmodeltest"
	"github.com/llmfence/llmfence/internal/ollamatest"
	"github.com/llmfence/llmfence/internal/service"
)

// loopbackUp sets IFF_UP on lo in the current network namespace (what
// `ip link set lo up` does), with the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls.
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [16]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCGIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	ifr.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.SIOCSIFFLAGS, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}

// need skips the test when a prerequisite is missing, or fails it under CI
// (CI runs as root with util-linux, and must run these tests).
func need(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("required in CI: %s", why)
	}
	t.Skipf("skipping: %s", why)
}

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	need(t, err == nil, name+" (util-linux) is not installed")
	return p
}

// writeOllamaStore writes a real Ollama model store with one tiny model
// (a random-weight GGUF, its config and a system prompt) and returns the
// model's name.
func writeOllamaStore(t *testing.T, dir string) string {
	t.Helper()
	blobs := filepath.Join(dir, "blobs")
	must(t, os.MkdirAll(blobs, 0o755))
	model := filepath.Join(t.TempDir(), "model.gguf")
	sum, size, err := ggufmodeltest.WriteFile(model, ggufmodeltest.Options{})
	must(t, err)
	b, err := os.ReadFile(model)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(blobs, "sha256-"+sum), b, 0o644))
	put := func(data []byte) (string, int) {
		h := sha256.Sum256(data)
		d := hex.EncodeToString(h[:])
		must(t, os.WriteFile(filepath.Join(blobs, "sha256-"+d), data, 0o644))
		return "sha256:" + d, len(data)
	}
	cfgDigest, cfgSize := put([]byte(`{"model_format":"gguf","model_family":"llama","model_families":["llama"],"model_type":"tiny","file_type":"F32","architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	sysDigest, sysSize := put([]byte("You are a test model."))
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:%s","size":%d},{"mediaType":"application/vnd.ollama.image.system","digest":%q,"size":%d}]}`,
		cfgDigest, cfgSize, sum, size, sysDigest, sysSize)
	mdir := filepath.Join(dir, "manifests", "registry.ollama.ai", "library", "audit-tiny")
	must(t, os.MkdirAll(mdir, 0o755))
	must(t, os.WriteFile(filepath.Join(mdir, "latest"), []byte(man), 0o644))
	return "audit-tiny:latest"
}

// startedProcess is a process a test started and must stop.
type startedProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func start(t *testing.T, cmd *exec.Cmd, log string) *startedProcess {
	t.Helper()
	f, err := os.Create(log)
	must(t, err)
	cmd.Stdout, cmd.Stderr = f, f
	must(t, cmd.Start())
	p := &startedProcess{cmd: cmd, done: make(chan struct{}), log: log}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (p *startedProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitLog waits until the process's log contains want.
func (p *startedProcess) waitLog(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		b, _ := os.ReadFile(p.log)
		if bytes.Contains(b, []byte(want)) {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("process exited before %q; log:\n%s", want, b)
		case <-deadline:
			t.Fatalf("no %q within 90s; log:\n%s", want, b)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func decodeJSONL(t *testing.T, data []byte) (*MachineRecord, []*Runtime, []*Store) {
	t.Helper()
	var m *MachineRecord
	var rts []*Runtime
	var sts []*Store
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var kind struct{ Kind string }
		must(t, json.Unmarshal(sc.Bytes(), &kind))
		switch kind.Kind {
		case KindMachine:
			m = new(MachineRecord)
			must(t, json.Unmarshal(sc.Bytes(), m))
		case KindRuntime:
			r := new(Runtime)
			must(t, json.Unmarshal(sc.Bytes(), r))
			rts = append(rts, r)
		case KindStore:
			s := new(Store)
			must(t, json.Unmarshal(sc.Bytes(), s))
			sts = append(sts, s)
		default:
			t.Fatalf("unknown record kind %q", kind.Kind)
		}
	}
	if m == nil {
		t.Fatalf("no machine record in:\n%s", data)
	}
	return m, rts, sts
}

func runtimeByPID(rts []*Runtime, pid int) *Runtime {
	for _, r := range rts {
		if r.PID == pid {
			return r
		}
	}
	return nil
}

func storeByPath(sts []*Store, path string) *Store {
	for _, s := range sts {
		if s.Path == path {
			return s
		}
	}
	return nil
}

// onlyProber lets the real prober reach the test's own server only, so the
// test does not send requests to other servers that happen to run on this
// machine.
type onlyProber struct {
	t    *testing.T
	real Prober
	addr netip.AddrPort
}

func (o onlyProber) Probe(ctx context.Context, addr netip.AddrPort) (*service.Service, error) {
	if o.real == nil || addr != o.addr {
		return nil, fmt.Errorf("not this test's server")
	}
	return o.real.Probe(ctx, addr)
}

func realProber(t *testing.T) Prober {
	p, err := fingerprint.New(fingerprint.Options{Timeout: 5 * time.Second, TargetBudget: 30 * time.Second})
	must(t, err)
	return FingerprintProber(p)
}

// TestRealOllamaExposedInNetns starts a real Ollama 0.6.8 with
// OLLAMA_HOST=0.0.0.0:PORT and OLLAMA_ORIGINS=* inside a network namespace
// of its own (only loopback, brought up by the test), then audits it twice:
// from the host's namespace (its sockets read through
// /proc/<pid>/net/tcp, not the auditor's own table; no probe) and from
// inside its namespace with nsenter (where the loopback probe confirms it).
func TestRealOllamaExposedInNetns(t *testing.T) {
	bin := ollamatest.Binary(t)
	need(t, os.Geteuid() == 0, "creating a network namespace and entering it need root")
	unshare, nsenter := lookPath(t, "unshare"), lookPath(t, "nsenter")
	self, err := os.Executable()
	must(t, err)

	dir := t.TempDir()
	models, home := filepath.Join(dir, "models"), filepath.Join(dir, "home")
	must(t, os.MkdirAll(home, 0o755))
	name := writeOllamaStore(t, models)
	const port = 11434 // free: the namespace is new
	argv, _ := json.Marshal([]string{bin, "serve"})
	cmd := exec.Command(unshare, "--net", "--", self)
	cmd.Env = append(cleanEnv(), helperEnv+"=lo-exec", helperExecEnv+"="+string(argv), "HOME="+home,
		fmt.Sprintf("OLLAMA_HOST=0.0.0.0:%d", port), "OLLAMA_ORIGINS=*", "OLLAMA_MODELS="+models, "OLLAMA_NOPRUNE=1")
	o := start(t, cmd, filepath.Join(dir, "ollama.log"))
	o.waitLog(t, "Listening on")
	pid := o.cmd.Process.Pid

	hostNS, _ := os.Readlink("/proc/self/ns/net")
	itsNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	must(t, err)
	if itsNS == hostNS {
		t.Fatalf("ollama runs in the host's network namespace")
	}

	// 1. From the host's namespace (a prober that would fail the test if
	// asked: this ollama is out of the host's reach).
	res, err := Run(t.Context(), Options{Reader: NewLinux("/"), Judge: testJudge(t), Prober: onlyProber{t: t}})
	must(t, err)
	rt := runtimeByPID(res.Runtimes, pid)
	if rt == nil {
		t.Fatalf("ollama (pid %d) not found among %d runtimes", pid, len(res.Runtimes))
	}
	checkExposedOllama(t, rt, port, models)
	if rt.Probe != nil || !hasNote(rt.Notes, "another network namespace") {
		t.Errorf("from outside its namespace it must not be probed: probe %+v notes %q", rt.Probe, rt.Notes)
	}
	if rt.Version != ollamatest.WantVersion || rt.VersionSource != "build info" {
		t.Errorf("version %q from %q, want %s from the build info", rt.Version, rt.VersionSource, ollamatest.WantVersion)
	}
	if st := storeByPath(res.Stores, models); st == nil || st.Models != 1 || !slices.Contains(st.UsedBy, pid) {
		t.Errorf("its store %s: %+v", models, st)
	}

	// 2. From inside its namespace: the loopback probe confirms it.
	in := exec.Command(nsenter, fmt.Sprintf("--net=/proc/%d/ns/net", pid), "--", self)
	in.Env = append(cleanEnv(), helperEnv+"=audit")
	var stderr bytes.Buffer
	in.Stderr = &stderr
	out, err := in.Output()
	if err != nil {
		t.Fatalf("audit inside the namespace: %v\n%s", err, stderr.String())
	}
	_, rts, sts := decodeJSONL(t, out)
	rt = runtimeByPID(rts, pid)
	if rt == nil {
		t.Fatalf("ollama (pid %d) not found from inside its namespace", pid)
	}
	checkExposedOllama(t, rt, port, models)
	if rt.Probe == nil || rt.Probe.Product != "ollama" || rt.Probe.Version != ollamatest.WantVersion || rt.Probe.Auth != service.AuthNone || rt.Probe.Models != 1 {
		t.Fatalf("probe from inside: %+v (notes %q)", rt.Probe, rt.Notes)
	}
	if (rt.Probe.Addr != fmt.Sprintf("127.0.0.1:%d", port) && rt.Probe.Addr != fmt.Sprintf("[::1]:%d", port)) || rt.VersionSource != "probe" {
		t.Errorf("probe address %s, version source %s", rt.Probe.Addr, rt.VersionSource)
	}
	for _, id := range []string{"LLMF-001", "LLMF-002", "LLMF-008", "LLMF-013", "LLMF-014"} {
		if len(find(rt.Findings, id)) == 0 {
			t.Errorf("exposed, unauthenticated, CORS open: %s missing from %v", id, findingIDs(rt.Findings))
		}
	}
	if rt.Risk != service.SeverityCritical {
		t.Errorf("risk %s", rt.Risk)
	}
	if st := storeByPath(sts, models); st == nil || st.Models != 1 || st.Largest[0].Name != name {
		t.Errorf("store from inside: %+v", st)
	}
}

func checkExposedOllama(t *testing.T, rt *Runtime, port int, models string) {
	t.Helper()
	// Go listens on [::] (dual stack) when told 0.0.0.0.
	wild := slices.Contains(rt.Listen, fmt.Sprintf("0.0.0.0:%d", port)) || slices.Contains(rt.Listen, fmt.Sprintf("[::]:%d", port))
	if rt.Product != "ollama" || !rt.Exposed || rt.Exposure != ExposureAll || !wild {
		t.Errorf("not reported as exposed: product %s exposed %v (%s) listen %v notes %q", rt.Product, rt.Exposed, rt.Exposure, rt.Listen, rt.Notes)
	}
	if rt.Settings["OLLAMA_HOST"] != fmt.Sprintf("0.0.0.0:%d", port) || rt.SettingSources["OLLAMA_HOST"] != fromEnvironment ||
		rt.Settings["OLLAMA_ORIGINS"] != "*" || rt.SettingSources["OLLAMA_ORIGINS"] != fromEnvironment {
		t.Errorf("settings %v from %v", rt.Settings, rt.SettingSources)
	}
	if !slices.Contains(rt.Stores, models) {
		t.Errorf("model store %s not found: %v", models, rt.Stores)
	}
	f13 := find(rt.Findings, "LLMF-013")
	if len(f13) != 1 || f13[0].Severity != service.SeverityHigh || !strings.Contains(f13[0].Detail, "OLLAMA_HOST=0.0.0.0") {
		t.Errorf("LLMF-013: %+v", rt.Findings)
	}
	if len(find(rt.Findings, "LLMF-014")) != 1 {
		t.Errorf("OLLAMA_ORIGINS=* not raised: %+v", rt.Findings)
	}
	if !strings.HasPrefix(rt.Remediation, "It was started ") || !strings.Contains(rt.Remediation, "stop it and start it bound to loopback, OLLAMA_HOST=127.0.0.1:") {
		t.Errorf("remediation should start with the fix for a hand-started ollama:\n%s", rt.Remediation)
	}
}

// cleanEnv is the test's environment without the caller's OLLAMA_* and
// proxy settings.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "OLLAMA_") || strings.HasSuffix(strings.ToUpper(k), "_PROXY") || k == "HOME" || strings.HasPrefix(k, "LLMFENCE_AUDIT_TEST") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// TestRealOllamaLoopbackNotExposed: an Ollama bound to loopback is not
// exposed, and what only strangers could do is not held against it.
func TestRealOllamaLoopbackNotExposed(t *testing.T) {
	s := ollamatest.Start(t)
	res, err := Run(t.Context(), Options{Reader: NewLinux("/"), Judge: testJudge(t), Prober: onlyProber{t: t, real: realProber(t), addr: s.Addr}})
	must(t, err)
	var rt *Runtime
	for _, r := range res.Runtimes {
		if slices.Contains(r.Listen, s.Addr.String()) {
			rt = r
		}
	}
	if rt == nil {
		t.Fatalf("no runtime listens on %s", s.Addr)
	}
	if rt.Product != "ollama" || rt.Exposed || rt.Exposure != ExposureLoopback {
		t.Errorf("product %s exposed %v (%s) listen %v", rt.Product, rt.Exposed, rt.Exposure, rt.Listen)
	}
	if rt.Settings["OLLAMA_HOST"] != s.Addr.String() {
		t.Errorf("settings %v", rt.Settings)
	}
	if rt.Probe == nil || rt.Probe.Product != "ollama" || rt.Probe.Version != ollamatest.WantVersion || rt.Probe.Addr != s.Addr.String() {
		t.Errorf("probe %+v", rt.Probe)
	}
	for _, id := range []string{"LLMF-001", "LLMF-002", "LLMF-013", "LLMF-014"} {
		if len(find(rt.Findings, id)) != 0 {
			t.Errorf("%s on a loopback-only ollama: %+v", id, rt.Findings)
		}
	}
	if !slices.Contains(rt.Stores, s.ModelsDir) {
		t.Errorf("stores %v, want %s", rt.Stores, s.ModelsDir)
	}
}

// idleCopy copies the test binary to a directory every user can enter, as
// name, so processes can be started from it as another user.
func idleCopy(t *testing.T, dir, name string) string {
	t.Helper()
	self, err := os.Executable()
	must(t, err)
	src, err := os.Open(self)
	must(t, err)
	defer src.Close()
	p := filepath.Join(dir, name)
	dst, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o755)
	must(t, err)
	_, err = io.Copy(dst, src)
	must(t, err)
	must(t, dst.Close())
	return p
}

func openDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		must(t, os.Chmod(p, 0o755))
	}
	return d
}

// TestOtherUsersProcesses: runtimes of another user (nobody), audited by a
// third unprivileged user, give "could not read" notes and are never rated
// safe; nothing crashes.
func TestOtherUsersProcesses(t *testing.T) {
	need(t, os.Geteuid() == 0, "starting processes as other users needs root")
	setpriv := lookPath(t, "setpriv")
	dir := openDir(t)
	ollama := idleCopy(t, dir, "ollama")
	llama := idleCopy(t, dir, "llama-server")
	auditor := idleCopy(t, dir, "audit-helper")
	as := func(uid int, argv ...string) *exec.Cmd {
		c := exec.Command(setpriv, append([]string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups", "--"}, argv...)...)
		c.Dir = dir
		return c
	}
	c1 := as(65534, ollama, "serve")
	c1.Env = append(cleanEnv(), helperEnv+"=idle", "OLLAMA_HOST=0.0.0.0:11999")
	o := start(t, c1, filepath.Join(dir, "ollama.log"))
	c2 := as(65534, llama, "--host", "0.0.0.0", "--port", "18080", "--api-key", "sk-not-for-eyes")
	c2.Env = append(cleanEnv(), helperEnv+"=idle")
	l := start(t, c2, filepath.Join(dir, "llama.log"))
	o.waitLog(t, "127.0.0.1:")
	l.waitLog(t, "127.0.0.1:")

	a := as(65533, auditor)
	a.Env = append(cleanEnv(), helperEnv+"=audit", "LLMFENCE_AUDIT_TEST_NOPROBE=1", "HOME="+dir)
	var stderr bytes.Buffer
	a.Stderr = &stderr
	out, err := a.Output()
	if err != nil {
		t.Fatalf("audit as uid 65533: %v\n%s", err, stderr.String())
	}
	m, rts, _ := decodeJSONL(t, out)
	if m.Privileged || m.Complete {
		t.Errorf("machine: privileged %v complete %v", m.Privileged, m.Complete)
	}

	or := runtimeByPID(rts, o.cmd.Process.Pid)
	if or == nil {
		t.Fatalf("nobody's ollama not reported")
	}
	if or.User != "nobody" || or.Complete || or.Exposure != ExposureUnknown || or.Exposed || or.Risk != RiskUnknown {
		t.Errorf("nobody's ollama: user %q complete %v exposure %s exposed %v risk %s", or.User, or.Complete, or.Exposure, or.Exposed, or.Risk)
	}
	for _, want := range []string{
		fmt.Sprintf("could not read the environment of pid %d (user nobody): permission denied", or.PID),
		fmt.Sprintf("could not read the open sockets of pid %d (user nobody): permission denied", or.PID),
		"listening sockets of user nobody",
	} {
		if !hasNote(or.Notes, want) {
			t.Errorf("notes lack %q: %q", want, or.Notes)
		}
	}
	if _, ok := or.Settings["OLLAMA_HOST"]; ok {
		t.Errorf("an unreadable environment cannot give settings: %v", or.Settings)
	}

	lr := runtimeByPID(rts, l.cmd.Process.Pid)
	if lr == nil {
		t.Fatalf("nobody's llama-server not reported")
	}
	if lr.Complete || !lr.Exposed || lr.Settings["--host"] != "0.0.0.0" || lr.Risk.Rank() < service.SeverityMedium.Rank() {
		t.Errorf("nobody's llama-server: complete %v exposed %v settings %v risk %s", lr.Complete, lr.Exposed, lr.Settings, lr.Risk)
	}
	if bytes.Contains(out, []byte("sk-not-for-eyes")) {
		t.Errorf("the output shows another user's secret")
	}
}

// TestRealProcessExitsMidRead: a real process that exits between the reads
// is reported as gone, not as unreadable.
func TestRealProcessExitsMidRead(t *testing.T) {
	dir := t.TempDir()
	bin := idleCopy(t, dir, "ollama")
	c := exec.Command(bin, "serve")
	c.Env = append(cleanEnv(), helperEnv+"=idle")
	p := start(t, c, filepath.Join(dir, "idle.log"))
	p.waitLog(t, "127.0.0.1:")
	pid := p.cmd.Process.Pid
	r := NewLinux("/")
	proc, err := r.Process(context.Background(), pid)
	must(t, err)
	if spec, helper := catalog(t).identify(proc.Exe, proc.Argv, proc.Cwd); spec == nil || spec.ID != "ollama" || helper {
		t.Fatalf("not identified: %q", proc.Argv)
	}
	p.stop()
	if err := r.Inspect(context.Background(), proc); !errors.Is(err, ErrGone) {
		t.Errorf("Inspect after exit: %v", err)
	}
	if _, err := r.Sockets(context.Background(), proc); !errors.Is(err, ErrGone) {
		t.Errorf("Sockets after exit: %v", err)
	}
	if _, err := r.Listening(context.Background(), proc); !errors.Is(err, ErrGone) {
		t.Errorf("Listening after exit: %v", err)
	}
	if _, err := r.Process(context.Background(), pid); !errors.Is(err, ErrGone) {
		t.Errorf("Process after exit: %v", err)
	}

	// Killed while the audit reads it: dropped, not reported unreadable.
	c2 := exec.Command(bin, "serve")
	c2.Env = append(cleanEnv(), helperEnv+"=idle")
	p2 := start(t, c2, filepath.Join(dir, "idle2.log"))
	p2.waitLog(t, "127.0.0.1:")
	kr := &killingReader{Linux: NewLinux("/"), victim: p2}
	res, err := Run(t.Context(), Options{Reader: kr, Judge: testJudge(t)})
	must(t, err)
	if !kr.killed {
		t.Fatalf("the victim was never read")
	}
	if rt := runtimeByPID(res.Runtimes, p2.cmd.Process.Pid); rt != nil {
		t.Errorf("a runtime that exited mid-read was reported: %+v", rt)
	}
}

// killingReader stops a process right after the audit first read it.
type killingReader struct {
	*Linux
	victim *startedProcess
	killed bool
}

func (k *killingReader) Process(ctx context.Context, pid int) (*Process, error) {
	p, err := k.Linux.Process(ctx, pid)
	if pid == k.victim.cmd.Process.Pid && !k.killed {
		k.killed = true
		k.victim.stop()
	}
	return p, err
}
