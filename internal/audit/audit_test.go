package audit

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/inspect"
	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/vulndb"
)

const dockerID = "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c"

// fixtureMachine is a machine with an exposed Ollama run by systemd (and
// its runner), a llama-server in a Docker container with its own network
// namespace, another user's KoboldCpp whose sockets and environment cannot
// be read, the unit fixtures (a vLLM and a user Ollama not running, a
// masked llama-server) and store fixtures.
func fixtureMachine(t *testing.T) *fixture {
	f := newFixture(t)
	f.copyTree("testdata/units", "")
	f.copyTree("testdata/stores/ollama", "srv/ollama/models")
	f.copyTree("testdata/stores/hf", "home/alice/.cache/huggingface/hub")
	f.proc(fixProc{pid: 100, ppid: 1, uid: 998, argv: []string{"/usr/local/bin/ollama", "serve"}, exe: "/usr/local/bin/ollama",
		cwd: "/usr/share/ollama", cgroup: "0::/system.slice/ollama.service", netns: hostNetNS, mntns: hostMntNS,
		env: map[string]string{"OLLAMA_HOST": "0.0.0.0", "OLLAMA_ORIGINS": "*", "OLLAMA_MODELS": "/srv/ollama/models",
			"OLLAMA_KEEP_ALIVE": "24h", "HOME": "/usr/share/ollama", "PATH": "/usr/bin", "LANG": "C.UTF-8"},
		sockets: []uint64{5001}})
	f.proc(fixProc{pid: 101, ppid: 100, uid: 998, argv: []string{"/usr/local/bin/ollama", "runner", "--model", "/srv/ollama/models/blobs/x", "--port", "40111"},
		exe: "/usr/local/bin/ollama", cgroup: "0::/system.slice/ollama.service", netns: hostNetNS, mntns: hostMntNS, env: map[string]string{}, sockets: []uint64{5002}})
	f.netTCP(100, false,
		fixSock{addr: procAddr4(0, 0, 0, 0), port: 11434, uid: 998, inode: 5001},
		fixSock{addr: procAddr4(127, 0, 0, 1), port: 40111, uid: 998, inode: 5002},
		fixSock{addr: procAddr4(0, 0, 0, 0), port: 22, uid: 0, inode: 9},
		fixSock{addr: procAddr4(0, 0, 0, 0), port: 5001, uid: 1000, inode: 8001},
	)
	f.proc(fixProc{pid: 200, ppid: 1, uid: 0, argv: []string{"/app/llama-server", "--host", "0.0.0.0", "--port", "8080", "--api-key", "sk-in-argv", "-m", "/models/q.gguf"},
		exe: "/app/llama-server", cgroup: "0::/system.slice/docker-" + dockerID + ".scope", netns: "net:[4026532999]", mntns: "mnt:[4026532998]",
		env: nil, sockets: []uint64{7001}})
	f.netTCP(200, false, fixSock{addr: procAddr4(0, 0, 0, 0), port: 8080, uid: 0, inode: 7001})
	f.proc(fixProc{pid: 300, ppid: 1, uid: 1000, argv: []string{"/home/alice/bin/koboldcpp-linux-x64", "--port", "5001", "--model", "m.gguf"},
		exe: "", cgroup: "0::/user.slice/user-1000.slice/session-3.scope", netns: hostNetNS, mntns: hostMntNS, env: nil, noFDs: true})
	// Processes that are no runtime, and one whose command line cannot be
	// read.
	f.proc(fixProc{pid: 400, ppid: 1, uid: 0, argv: []string{"/usr/sbin/sshd", "-D"}, exe: "/usr/sbin/sshd", env: map[string]string{}, netns: hostNetNS, sockets: []uint64{9}})
	f.proc(fixProc{pid: 401, ppid: 400, uid: 1000, argv: []string{"ollama", "run", "llama3"}, env: map[string]string{}, netns: hostNetNS})
	return f
}

// fakeProber records where the audit would probe and answers as a real
// Ollama would; it never dials (the fixture's runtimes do not exist).
type fakeProber struct {
	mu    sync.Mutex
	asked []netip.AddrPort
}

func (p *fakeProber) Probe(ctx context.Context, addr netip.AddrPort) (*service.Service, error) {
	p.mu.Lock()
	p.asked = append(p.asked, addr)
	p.mu.Unlock()
	return &service.Service{Host: addr.Addr().String(), Port: int(addr.Port()), Product: "ollama", Version: "0.5.7",
		Auth: service.AuthNone, CORS: "*", ManagementOpen: true, Models: []service.Model{{Name: "tiny:latest"}}}, nil
}

func runFixture(t *testing.T, f *fixture, opts Options) *Result {
	t.Helper()
	opts.Reader = f.reader()
	opts.Now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	opts.Version = "test"
	if opts.Judge == nil {
		opts.Judge = testJudge(t)
	}
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func byProduct(res *Result, product string, running bool) *Runtime {
	for _, r := range res.Runtimes {
		if r.Product == product && r.Running == running {
			return r
		}
	}
	return nil
}

func findingIDs(fs []service.Finding) []string {
	var out []string
	for _, f := range fs {
		if !slices.Contains(out, f.ID) {
			out = append(out, f.ID)
		}
	}
	slices.Sort(out)
	return out
}

func TestAuditFixtureMachine(t *testing.T) {
	f := fixtureMachine(t)
	pr := &fakeProber{}
	res := runFixture(t, f, Options{Prober: pr})

	// The probe went to the configured port on loopback only: not to the
	// runner's port, not into the container's namespace.
	if !slices.Equal(pr.asked, []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:11434")}) {
		t.Errorf("probed %v", pr.asked)
	}

	o := byProduct(res, "ollama", true)
	if o == nil {
		t.Fatalf("no running ollama: %+v", res.Runtimes)
	}
	if o.PID != 100 || !slices.Equal(o.PIDs, []int{101}) || o.User != "ollama" || o.Unit != "ollama.service" {
		t.Errorf("ollama process: pid %d pids %v user %q unit %q", o.PID, o.PIDs, o.User, o.Unit)
	}
	if !o.Exposed || o.Exposure != ExposureAll || !slices.Equal(o.Listen, []string{"0.0.0.0:11434", "127.0.0.1:40111"}) {
		t.Errorf("ollama exposure %v %s %v", o.Exposed, o.Exposure, o.Listen)
	}
	if o.Settings["OLLAMA_HOST"] != "0.0.0.0" || o.SettingSources["OLLAMA_HOST"] != "environment" || o.Settings["OLLAMA_ORIGINS"] != "*" {
		t.Errorf("ollama settings %v", o.Settings)
	}
	if _, ok := o.Settings["PATH"]; ok {
		t.Errorf("unrelated environment read: %v", o.Settings)
	}
	// Exposed and unauthenticated (the probe says so): the stranger's
	// findings stay, with the audit's own.
	for _, id := range []string{"LLMF-001", "LLMF-002", "LLMF-003", "LLMF-008", "LLMF-011", "LLMF-013", "LLMF-014", "LLMF-017"} {
		if !slices.Contains(findingIDs(o.Findings), id) {
			t.Errorf("ollama lacks %s: %v", id, findingIDs(o.Findings))
		}
	}
	if o.Risk != service.SeverityCritical || o.Version != "0.5.7" || o.VersionSource != "probe" {
		t.Errorf("ollama risk %s version %s (%s)", o.Risk, o.Version, o.VersionSource)
	}
	fix := strings.Split(o.Remediation, "\n")
	if !strings.HasPrefix(fix[0], "sudo mkdir -p /etc/systemd/system/ollama.service.d && printf '[Service]\\nEnvironment=\"OLLAMA_HOST=127.0.0.1:11434\"\\n' | sudo tee /etc/systemd/system/ollama.service.d/zz-llmfence-loopback.conf") ||
		!strings.Contains(fix[0], "systemctl restart ollama.service") {
		t.Errorf("the fix must come first as the drop-in for this unit:\n%s", o.Remediation)
	}
	if !strings.HasPrefix(fix[1], "Then put llmfence guard in front") || strings.Count(o.Remediation, "zz-llmfence-loopback.conf") != 1 {
		t.Errorf("guard second, generic drop-in not repeated:\n%s", o.Remediation)
	}
	if !slices.Equal(o.Stores, []string{"/srv/ollama/models"}) {
		t.Errorf("ollama stores %v", o.Stores)
	}

	// The container's llama-server: exposed in its own namespace, not
	// probed, secrets redacted, environment unreadable.
	l := byProduct(res, "llamacpp", true)
	if l == nil || !l.Exposed || l.Container == nil || l.Container.Engine != "docker" || l.Container.ID != dockerID[:12] || l.Probe != nil {
		t.Fatalf("container runtime %+v", l)
	}
	if strings.Contains(strings.Join(l.Cmdline, " "), "sk-in-argv") || l.Settings["--api-key"] != "(set; value not shown)" {
		t.Errorf("secret shown: %q %v", l.Cmdline, l.Settings)
	}
	if !hasNote(l.Notes, "another network namespace") || !hasNote(l.Notes, "could not read the environment of pid 200") || l.Complete {
		t.Errorf("container notes %q complete %v", l.Notes, l.Complete)
	}
	if !strings.Contains(l.Remediation, "docker run -p 127.0.0.1:8080:8080") {
		t.Errorf("container fix: %s", l.Remediation)
	}
	if f13 := find(l.Findings, "LLMF-013"); len(f13) != 1 || f13[0].Severity != service.SeverityMedium {
		t.Errorf("llama-server demands a key: LLMF-013 should be medium: %+v", l.Findings)
	}

	// Another user's KoboldCpp: nothing readable but its command line;
	// never "safe".
	k := byProduct(res, "koboldcpp", true)
	if k == nil || k.Complete || k.Exposure != ExposureUnknown || !k.Exposed || k.Risk == service.SeverityNone {
		t.Fatalf("unreadable runtime %+v", k)
	}
	for _, want := range []string{"could not read the executable of pid 300", "could not read the open sockets of pid 300 (user alice)", "0.0.0.0:5001", "taken as exposed"} {
		if !hasNote(k.Notes, want) {
			t.Errorf("koboldcpp notes lack %q: %q", want, k.Notes)
		}
	}

	// Units that are not running.
	v := byProduct(res, "vllm", false)
	if v == nil || v.Unit != "vllm.service" || v.Exposure != ExposureNotRunning || v.Settings["HF_HOME"] != "/srv/hf" || v.Settings["VLLM_API_KEY"] != "(set; value not shown)" {
		t.Fatalf("vllm unit %+v", v)
	}
	if f13 := find(v.Findings, "LLMF-013"); len(f13) != 1 || f13[0].Severity != service.SeverityMedium || !strings.Contains(f13[0].Detail, "not running") {
		t.Errorf("vllm unit LLMF-013 %+v", v.Findings)
	}
	uo := byProduct(res, "ollama", false)
	if uo == nil || uo.User != "alice" || len(find(uo.Findings, "LLMF-013")) != 0 {
		t.Errorf("alice's loopback user unit %+v", uo)
	}
	if byProduct(res, "llamacpp", false) != nil {
		t.Errorf("the masked llama-server unit was reported")
	}
	if len(res.Runtimes) != 5 {
		t.Errorf("%d runtimes; `ollama run` is a client and sshd no runtime", len(res.Runtimes))
	}

	// Stores: the one ollama uses, with its cloud model, and alice's cache.
	if len(res.Stores) != 2 {
		t.Fatalf("stores %+v", res.Stores)
	}
	for _, s := range res.Stores {
		switch s.Path {
		case "/srv/ollama/models":
			if s.Models != 3 || !slices.Equal(s.UsedBy, []int{100}) || !slices.Equal(s.CloudModels, []string{"gpt-oss:120b-cloud"}) {
				t.Errorf("ollama store %+v", s)
			}
		case "/home/alice/.cache/huggingface/hub":
			if s.Runtime != "huggingface" || s.Models != 1 || s.Owner != "root" {
				t.Errorf("hf store %+v", s)
			}
		default:
			t.Errorf("unexpected store %s", s.Path)
		}
	}
	if res.Machine.Complete || res.Machine.Risk != service.SeverityCritical || res.Machine.Runtimes != 5 {
		t.Errorf("machine %+v", res.Machine)
	}

	var buf bytes.Buffer
	if err := WriteJSONL(&buf, res); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, filepath.Join("testdata", "fixture_machine.golden.jsonl"), buf.Bytes())
	buf.Reset()
	if err := WriteTable(&buf, res); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, filepath.Join("testdata", "fixture_machine.golden.txt"), buf.Bytes())
	buf.Reset()
	cat, err := locale.NewCatalogue(Messages(), risk.Messages(), vulndb.Messages())
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Check(); err != nil {
		t.Fatal(err)
	}
	if err := WriteTableIn(&buf, res, cat.Printer(locale.Japanese)); err != nil {
		t.Fatal(err)
	}
	goldentest.Check(t, filepath.Join("testdata", "fixture_machine.ja.golden.txt"), buf.Bytes())
	buf.Reset()
	if err := WriteHTML(&buf, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<b>ollama</b>", "zz-llmfence-loopback.conf", "LLMF-013", "/srv/ollama/models"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	if strings.Contains(buf.String(), "sk-in-argv") || strings.Contains(buf.String(), "sk-envfile-secret") {
		t.Errorf("HTML shows a secret")
	}
}

func find(fs []service.Finding, id string) []service.Finding {
	var out []service.Finding
	for _, f := range fs {
		if f.ID == id {
			out = append(out, f)
		}
	}
	return out
}

func hasNote(notes []string, sub string) bool {
	for _, n := range notes {
		if strings.Contains(n, sub) {
			return true
		}
	}
	return false
}

// exitingReader makes a process exit right after it was first read, as a
// process that ends while the audit reads it.
type exitingReader struct {
	*Linux
	t    *testing.T
	root string
	pid  int
}

func (r *exitingReader) Process(ctx context.Context, pid int) (*Process, error) {
	p, err := r.Linux.Process(ctx, pid)
	if pid == r.pid {
		must(r.t, os.RemoveAll(filepath.Join(r.root, "proc", "100")))
	}
	return p, err
}

func TestProcessesExitingMidRead(t *testing.T) {
	f := fixtureMachine(t)
	// Exited before anything was read: only the directory is left.
	f.mkdir("proc/500")
	// Exited between the command line and the status.
	f.write("proc/501/cmdline", "/usr/local/bin/ollama\x00serve\x00")
	r := &exitingReader{Linux: f.reader(), t: t, root: f.root, pid: 100}
	res, err := Run(context.Background(), Options{Reader: r, Judge: testJudge(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range res.Runtimes {
		if rt.PID == 100 || rt.PID == 500 || rt.PID == 501 {
			t.Errorf("a process that exited was reported: %+v", rt)
		}
	}
	if byProduct(res, "llamacpp", true) == nil {
		t.Errorf("the other runtimes must still be reported")
	}
	if hasNote(res.Machine.Notes, "could not read the command line") {
		t.Errorf("exited processes are not unreadable ones: %q", res.Machine.Notes)
	}
}

func TestUnreadableCommandLine(t *testing.T) {
	f := newFixture(t)
	f.proc(fixProc{pid: 600, ppid: 1, uid: 1000, argv: []string{"x"}, env: map[string]string{}})
	must(t, os.Remove(f.path("proc/600/cmdline")))
	f.mkdir("proc/600/cmdline")
	res := runFixture(t, f, Options{})
	if res.Machine.Complete || res.Machine.Risk != RiskUnknown || !hasNote(res.Machine.Notes, "could not read the command line of 1 processes") {
		t.Errorf("machine %+v", res.Machine)
	}
}

func TestQuietMachine(t *testing.T) {
	f := newFixture(t)
	res := runFixture(t, f, Options{})
	if !res.Machine.Complete || res.Machine.Risk != service.SeverityNone || len(res.Runtimes)+len(res.Stores) != 0 {
		t.Errorf("quiet machine %+v", res.Machine)
	}
	var buf bytes.Buffer
	must(t, WriteTable(&buf, res))
	if !strings.Contains(buf.String(), "No LLM runtime or model store found.") {
		t.Errorf("table:\n%s", buf.String())
	}
}

// TestInspectStores runs inspect over every store (--inspect): the fixture
// Ollama store has a manifest whose blob is missing and a model blob that
// is no valid GGUF; both end up as findings of the store.
func TestInspectStores(t *testing.T) {
	f := fixtureMachine(t)
	in, err := inspect.New(inspect.Options{})
	must(t, err)
	res := runFixture(t, f, Options{Inspector: InspectorFor(in, testJudge(t))})
	var st *Store
	for _, s := range res.Stores {
		if s.Path == "/srv/ollama/models" {
			st = s
		}
	}
	if st == nil || st.Inspect == nil {
		t.Fatalf("store not inspected: %+v", st)
	}
	if st.Inspect.Files < 3 || st.Inspect.Verdicts["invalid"] == 0 {
		t.Errorf("inspect summary %+v", st.Inspect)
	}
	var fromInspect []string
	for _, fd := range st.Findings {
		if !strings.HasPrefix(fd.ID, "LLMF-") {
			fromInspect = append(fromInspect, fd.ID)
			if !strings.Contains(fd.Detail, filepath.Join(f.root, "srv/ollama/models")) {
				t.Errorf("finding %s does not say which file: %q", fd.ID, fd.Detail)
			}
		}
	}
	if len(fromInspect) == 0 || st.Risk.Rank() < service.SeverityMedium.Rank() {
		t.Errorf("inspect findings %v, risk %s", fromInspect, st.Risk)
	}
	// Without --inspect no model file is opened: no summary, no such findings.
	res = runFixture(t, f, Options{})
	for _, s := range res.Stores {
		if s.Inspect != nil {
			t.Errorf("%s inspected without --inspect", s.Path)
		}
	}
}

// testJudge is the judge scans use, on the embedded data.
func testJudge(t testing.TB) *risk.Judge {
	t.Helper()
	j, err := risk.NewJudge()
	if err != nil {
		t.Fatal(err)
	}
	return j
}
