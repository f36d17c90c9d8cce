package inspect

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/pythontest"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/verdict"
)

// The test corpus of the public pickle scanner picklescan
// (mmaitre314/picklescan, tests/data and tests/data2), recreated file by
// file by testdata/picklescan/gen.py: the upstream files are binaries that
// are not available offline, so each one is rebuilt from what picklescan's
// tests/init_data_files.py and tests/test_scanner.py say of it (gadget,
// protocol, container), or, for the few binaries without a recipe there,
// from the advisory that names them.
//
// How picklescan's tests judge each file (our reading):
//   - malicious: every file test_scanner.py expects to carry a Dangerous
//     global (infected_files 1), including broken_model.pkl and
//     malicious-invalid-bytes.pkl (dangerous import, then a parse error),
//     keyerror-exploit.pkl and type-confusion-exploit.pkl (os.system runs
//     before the stream breaks) and pytorch_magic_bypass.pt;
//   - benign: benign0_v*.pkl, pytorch_model.bin, new_pytorch_model.bin,
//     the .npy/.npz arrays (innocuous globals only, no issue) and
//     benign_password_protected.zip;
//   - edge: bad_pytorch.pt (a PNG signature named .pt) and not_a_pickle.bin
//     (a GLOBAL whose name is not UTF-8), which picklescan scans without a
//     threat and without an error.

type psKind int

const (
	psMalicious psKind = iota
	psBenign
	psEdge
)

func (k psKind) String() string { return [...]string{"malicious", "benign", "edge"}[k] }

type psEntry struct {
	name string // path below picklescan's tests/
	kind psKind
	// imports are the globals picklescan's test expects for the file (for
	// malicious files, those it calls Dangerous); CPython's unpickler must
	// ask for each of them on the bytes the file's loader unpickles. For
	// benign and edge files they are all it may ask for.
	imports [][2]string
	// lenient: the file need not be clean (issue 9 allows an encrypted
	// member or a .pt nothing can read to be suspicious, and an
	// unrecognised .bin is not-inspected), but it must not be malicious nor
	// said to run code.
	lenient bool
	// reconstructed: the upstream file's bytes are described neither by its
	// recipe nor by its advisory; gen.py builds the technique its name and
	// expected globals describe.
	reconstructed bool
}

func g(module, name string) [2]string { return [2]string{module, name} }

func mal(name string, imports ...[2]string) psEntry {
	return psEntry{name: name, kind: psMalicious, imports: imports}
}

func psCorpus() []psEntry {
	eval3, eval0, system := g("builtins", "eval"), g("__builtin__", "eval"), g("posix", "system")
	rt := [][2]string{g("collections", "OrderedDict"), g("torch._utils", "_rebuild_tensor_v2"), g("torch", "FloatStorage")}
	np := [][2]string{g("numpy.core.multiarray", "_reconstruct"), g("numpy", "ndarray"), g("numpy", "dtype")}
	cp := "cloudpickle.cloudpickle"
	es := []psEntry{
		{name: "data/benign0_v0.pkl", kind: psBenign},
		{name: "data/benign0_v3.pkl", kind: psBenign},
		{name: "data/benign0_v4.pkl", kind: psBenign},
		{name: "data/pytorch_model.bin", kind: psBenign, imports: rt},
		{name: "data/new_pytorch_model.bin", kind: psBenign, imports: rt},
		{name: "data/object_array.npy", kind: psBenign, imports: np},
		{name: "data/benign_password_protected.zip", kind: psBenign, lenient: true},
		{name: "data2/object_array.npy", kind: psBenign, imports: np},
		{name: "data2/int_array.npy", kind: psBenign},
		{name: "data2/object_arrays.npz", kind: psBenign, imports: np},
		{name: "data2/int_arrays.npz", kind: psBenign},
		{name: "data2/object_arrays_compressed.npz", kind: psBenign, imports: np},
		{name: "data2/int_arrays_compressed.npz", kind: psBenign},
		{name: "data/bad_pytorch.pt", kind: psEdge, lenient: true},
		{name: "data/not_a_pickle.bin", kind: psEdge, lenient: true},

		mal("data/malicious1_v0.pkl", eval0),
		mal("data/malicious1_v3.pkl", eval3),
		mal("data/malicious1_v4.pkl", eval3),
		mal("data/malicious2_v0.pkl", system),
		mal("data/malicious2_v3.pkl", system),
		mal("data/malicious2_v4.pkl", system),
		mal("data/malicious0.pkl", g("__builtin__", "globals"), g("__builtin__", "compile"), eval0, g("__builtin__", "getattr"), g("__builtin__", "dict"), g("__builtin__", "apply")),
		mal("data/malicious10.pkl", g("__builtin__", "exec")),
		mal("data/malicious11.pkl", g("os", "system")),
		mal("data/malicious-invalid-bytes.pkl", g("os", "system")),
		mal("data/broken_model.pkl", g("builtins", "exec")),
		mal("data/malicious12.pkl", g("operator", "attrgetter"), g("builtins", "__import__")),
		mal("data/malicious3.pkl", g("httplib", "HTTPSConnection")),
		mal("data/malicious4.pickle", g("requests.api", "get")),
		mal("data/malicious5.pickle", g("aiohttp.client", "ClientSession")),
		mal("data/malicious6.pkl", g("requests.api", "get")),
		mal("data/malicious7.pkl", g("socket", "create_connection")),
		mal("data/malicious8.pkl", g("subprocess", "run")),
		mal("data/malicious9.pkl", g("sys", "exit")),
		mal("data/malicious13a.pkl", g("pickle", "loads"), g("_codecs", "encode")),
		mal("data/malicious13b.pkl", g("_pickle", "loads")),
		mal("data/malicious14.pkl", g("runpy", "_run_code")),
		mal("data/malicious15a.pkl", g("__builtin__", "getattr"), g("bdb", "Bdb")),
		mal("data/malicious15b.pkl", g("bdb", "Bdb.run"), g("bdb", "Bdb")),
		mal("data/malicious16.pkl", g("pip", "main")),
		mal("data/malicious17.pkl", g("torch._inductor.codecache", "compile_file")),
		mal("data/malicious18.pkl", g("pydoc", "pipepager")),
		mal("data/malicious19.pkl", g("functools", "partial"), g("torch.serialization", "load")),
		mal("data/malicious20.pkl", g("venv", "create")),
		mal("data/malicious1.7z", eval3),
		mal("data/malicious1.zip", eval3),
		mal("data/malicious1_central_directory.zip", eval3),
		mal("data/malicious1_wrong_ext.zip", eval3),
		mal("data/malicious1_0x1.zip", eval3),
		mal("data/malicious1_0x20.zip", eval3),
		mal("data/malicious1_0x40.zip", eval3),
		mal("data/pytorch_magic_bypass.pt", eval0, system),
		// CPython then imports _rebuild_tensor.system from the overridden
		// sys.modules; the oracle's stand-in for sys.modules is a class that
		// takes no item assignment, so it stops after the first two.
		{name: "data/sys_module_override_sploit.pkl", kind: psMalicious, reconstructed: true,
			imports: [][2]string{g("torch", "_utils.sys.modules"), g("torch", "os")}},

		mal("data2/malicious21.pkl", g("timeit", "timeit")),
		mal("data2/malicious22.pkl", g("numpy.testing._private.utils", "runstring")),
		mal("data2/malicious23.pkl", g("os", "system")),
		mal("data2/keyerror-exploit.pkl", g("os", "system")),
		mal("data2/type-confusion-exploit.pkl", g("os", "system")),
		mal("data2/malicious1_crc.zip", eval3),
		mal("data2/io_FileIO.pkl", g("_io", "FileIO")),
		mal("data2/urllib_request_urlopen.pkl", g("urllib.request", "urlopen")),
		mal("data2/logging_FileHandler.pkl", g("logging", "FileHandler")),
		mal("data2/types_CodeType.pkl", g("types", "CodeType")),
		mal("data2/cloudpickle_codeinjection.pkl", g(cp, "_function_setstate"), g(cp, "_builtin_type"), g(cp, "_make_function"),
			g(cp, "_make_cell"), g(cp, "_make_empty_cell"), g(cp, "subimport")),
		mal("data2/importlib_bypass.pkl", g("importlib", "import_module")),
		mal("data2/marshal_bypass.pkl", g("marshal", "loads")),
		mal("data2/dns_exfiltration.npy", g("ssl", "get_server_certificate")),

		mal("data2/GHSA-4r9r-ch6f-vxmx.pkl", g("torch.utils.bottleneck.__main__", "run_cprofile")),
		mal("data2/GHSA-86cj-95qr-2p4f.pkl", g("torch._dynamo.guards", "GuardBuilder.get")),
		mal("data2/GHSA-f4x7-rfwp-v3xw.pkl", g("torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression")),
		mal("data2/GHSA-f745-w6jp-hpxx.pkl", g("torch.utils.collect_env", "run")),
		mal("data2/GHSA-jhph-76pp-mggw.pkl", g("torch.utils.collect_env", "run"), g("torch.utils.collect_env", "run_and_read_all")),
		mal("data2/GHSA-h3qp-7fh3-f8h4.pkl", g("torch.utils.data.datapipes.utils.decoder", "basichandlers")),
		mal("data2/GHSA-vr7h-p6mm-wpmh.pkl", g("torch.jit.unsupported_tensor_ops", "execWrapper")),
		mal("data2/GHSA-vv6j-3g6g-2pvj.pkl", g("torch.utils._config_module", "ConfigModule.load_config")),
		mal("data2/GHSA-5qwp-399c-mjwf.pkl", g("trace", "Trace.run")),
		mal("data2/GHSA-g344-hcph-8vgg.pkl", g("trace", "Trace.runctx")),
		mal("data2/GHSA-x696-vm39-cp64.pkl", g("profile", "Profile.run")),
		mal("data2/GHSA-6vqj-c2q5-j97w.pkl", g("profile", "Profile.runctx")),
		mal("data2/GHSA-f54q-57x4-jg88.pkl", g("lib2to3.pgen2.grammar", "Grammar.loads")),
		mal("data2/GHSA-3vg9-h568-4w9m.pkl", g("idlelib.debugobj", "ObjectTreeItem.SetText")),
		mal("data2/GHSA-6w4w-5w54-rjvr.pkl", g("idlelib.autocomplete", "AutoComplete.get_entity")),
		mal("data2/GHSA-7cq8-mj8x-j263.pkl", g("idlelib.autocomplete", "AutoComplete.fetch_completions")),
		mal("data2/GHSA-cj3c-v495-4xqh.pkl", g("code", "InteractiveInterpreter.runcode")),
		mal("data2/GHSA-8r4j-24qv-fmq9.pkl", g("idlelib.calltip", "Calltip.fetch_tip")),
		mal("data2/GHSA-9xph-j2h6-g47v.pkl", g("idlelib.calltip", "get_entity")),
		mal("data2/GHSA-4whj-rm5r-c2v8.pkl", g("torch.utils.bottleneck.__main__", "run_autograd_prof")),
		mal("data2/GHSA-xp4f-hrf8-rxw7.pkl", g("ensurepip", "_run_pip")),
		mal("data2/GHSA-p9w7-82w4-7q8m.pkl", g("lib2to3.pgen2.pgen", "ParserGenerator.make_label")),
		mal("data2/GHSA-m869-42cg-3xwr.pkl", g("idlelib.run", "Executive.runcode")),
		mal("data2/GHSA-j343-8v2j-ff7w.pkl", g("idlelib.pyshell", "ModifiedInterpreter.runcommand")),
		mal("data2/GHSA-3gf5-cxq9-w223.pkl", g("idlelib.pyshell", "ModifiedInterpreter.runcode")),
		mal("data2/GHSA-fqq6-7vqf-w3fg.pkl", g("doctest", "debug_script")),
		mal("data2/GHSA-9w88-8rmg-7g2p.pkl", g("cProfile", "runctx")),
		mal("data2/GHSA-49gj-c84q-6qm9.pkl", g("cProfile", "run")),
		mal("data2/GHSA-7wx9-6375-f5wh.pkl", g("profile", "run")),
		mal("data2/GHSA-q77w-mwjj-7mqx.pkl", g("asyncio.unix_events", "_UnixSubprocessTransport._start")),
		mal("data2/GHSA-jgw4-cr84-mqxg.bin", g("asyncio.unix_events", "_UnixSubprocessTransport._start")),
		mal("data2/GHSA-m273-6v24-x4m4.pkl", g("distutils.file_util", "write_file")),
		mal("data2/GHSA-4675-36f9-wf6r.pkl", g("ctypes", "CDLL")),
		mal("data2/GHSA-84r2-jw7c-4r5q.pkl", g("pydoc", "locate"), g("operator", "methodcaller")),
		mal("data2/GHSA-vqmv-47xg-9wpr.pkl", g("pty", "spawn")),
		mal("data2/GHSA-r8g5-cgf2-4m4m.pkl", g("numpy.f2py.crackfortran", "getlincoef")),
		mal("data2/GHSA-955r-x9j8-7rhh.pkl", g("_operator", "methodcaller"), g("builtins", "__import__")),
		mal("data2/GHSA-46h3-79wf-xr6c.pkl", g("_operator", "attrgetter"), g("builtins", "__import__")),
		mal("data2/GHSA-vvpj-8cmc-gx39.pkl", g("pkgutil", "resolve_name")),
		{name: "data2/GHSA-9m3x-qqw2-h32h.pkl", kind: psMalicious, reconstructed: true,
			imports: [][2]string{g("builtins", "getattr"), g("builtins", "__import__")}},
		mal("data2/GHSA-g38g-8gr9-h9xp-uuid.pkl", g("uuid", "_get_command_stdout")),
		mal("data2/GHSA-g38g-8gr9-h9xp-osx-support.pkl", g("_osx_support", "_read_output")),
		mal("data2/GHSA-g38g-8gr9-h9xp-aix-support.pkl", g("_aix_support", "_read_cmd_output")),
		mal("data2/GHSA-g38g-8gr9-h9xp-imaplib.pkl", g("imaplib", "IMAP4_stream")),
		mal("data2/GHSA-g38g-8gr9-h9xp-pyrepl-pager.pkl", g("_pyrepl.pager", "pipe_pager")),
		mal("data2/GHSA-g38g-8gr9-h9xp-test.pkl", g("test.support.script_helper", "assert_python_ok")),
	}
	return es
}

type psGenReq struct {
	Name string `json:"name"`
	Path string `json:"path"`
}

type psGenResp struct {
	OK      bool   `json:"ok"`
	Payload []byte `json:"payload"`
	Error   string `json:"error"`
}

// TestPicklescanCorpus recreates picklescan's test corpus and holds
// llmfence to what that corpus expects: every malicious file malicious
// (and failing the default --fail-on), every benign file clean, the edge
// files never malicious. Before judging llmfence, it checks each
// recreated file against CPython: the bytes its loader unpickles make
// CPython's own unpickler ask for exactly the globals picklescan's tests
// name, so a file that lost its payload cannot pass as caught.
func TestPicklescanCorpus(t *testing.T) {
	py := pythontest.Need(t, "numpy", "torch")
	script, err := os.ReadFile(filepath.Join("testdata", "picklescan", "gen.py"))
	if err != nil {
		t.Fatal(err)
	}
	corpus := psCorpus()
	dir := t.TempDir()
	reqs := make([]psGenReq, len(corpus))
	for i, e := range corpus {
		p := filepath.Join(dir, filepath.FromSlash(e.name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		reqs[i] = psGenReq{Name: e.name, Path: p}
	}
	gen := pythontest.Batch[psGenReq, psGenResp](t, py, string(script), reqs)
	oreqs := make([]pickleReq, len(corpus))
	for i, r := range gen {
		if !r.OK {
			t.Fatalf("%s: %s", corpus[i].name, r.Error)
		}
		oreqs[i] = pickleReq{Data: base64.StdEncoding.EncodeToString(r.Payload), Streams: 32}
	}
	refs := pythontest.Batch[pickleReq, pickleResp](t, py, pythontest.Oracle("pickle"), oreqs)

	in := newTestInspector(t, nil, func(o *Options) { o.MaxMemberSize = 64 << 20 })
	count := map[psKind][2]int{} // judged as the corpus expects, of all
	for i, e := range corpus {
		t.Run(e.name, func(t *testing.T) {
			// The recreated file does what the corpus says, per CPython.
			asked := map[[2]string]bool{}
			for _, imp := range refs[i].Imports {
				imp[0] = strings.Replace(imp[0], "numpy._core.", "numpy.core.", 1)
				asked[imp] = true
			}
			for _, want := range e.imports {
				if !asked[want] {
					t.Errorf("CPython's unpickler does not ask for %s.%s on the recreated payload (it asks for %v)", want[0], want[1], refs[i].Imports)
				}
			}
			if e.kind != psMalicious && len(asked) != len(e.imports) {
				t.Errorf("CPython's unpickler asks for %v, picklescan's benign file only for %v", refs[i].Imports, e.imports)
			}

			r := in.InspectFile(context.Background(), filepath.Join(dir, filepath.FromSlash(e.name)), "")
			var problem string
			switch {
			case e.kind == psMalicious && r.Verdict != verdict.Malicious:
				problem = "want malicious"
			case e.kind == psMalicious && !r.Fails(service.SeverityHigh):
				problem = "malicious but passes the default --fail-on high"
			case e.kind != psMalicious && (r.Verdict == verdict.Malicious || r.Executes):
				problem = "a file that runs no code is judged to"
			case e.kind != psMalicious && !e.lenient && (r.Verdict != verdict.Clean || r.Error != "" || r.Fails(service.SeverityHigh)):
				problem = "want clean"
			}
			if problem != "" {
				t.Errorf("%s file: %s; inspected as %s, %s (error %q): %s", e.kind, problem, r.Format, r.Verdict, r.Error, findingIDs(r.Findings))
			}
			c := count[e.kind]
			c[1]++
			if problem == "" {
				c[0]++
			}
			count[e.kind] = c
		})
	}
	m, b, x := count[psMalicious], count[psBenign], count[psEdge]
	rebuilt := 0
	for _, e := range corpus {
		if e.reconstructed {
			rebuilt++
		}
	}
	t.Logf("picklescan corpus: %d/%d malicious files malicious, %d/%d benign files as expected, %d/%d edge files not malicious (%d files rebuilt from their technique, not a recipe)",
		m[0], m[1], b[0], b[1], x[0], x[1], rebuilt)
}

func findingIDs(fs []verdict.Finding) string {
	var ids []string
	for _, f := range fs {
		s := f.ID
		if f.Member != "" {
			s += "@" + f.Member
		}
		if !slices.Contains(ids, s) {
			ids = append(ids, s)
		}
	}
	sort.Strings(ids)
	return fmt.Sprint(ids)
}

// objectNpy is a .npy file of object dtype whose array data is the pickle p.
func objectNpy(p []byte) []byte {
	hdr := "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
	for (10+len(hdr)+1)%64 != 0 {
		hdr += " "
	}
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(hdr)+1), 0)
	b = append(b, hdr+"\n"...)
	return append(b, p...)
}

// TestObjectArrayJudgedByItsPickle: an object-dtype array is judged by the
// pickle NumPy would unpickle, like any pickle: clean when it only rebuilds
// arrays (picklescan's benign object_array.npy), malicious when it calls
// os.system (its dns_exfiltration.npy), alone or inside an .npz.
func TestObjectArrayJudgedByItsPickle(t *testing.T) {
	benign := []byte("\x80\x03cnumpy.core.multiarray\n_reconstruct\nq\x00cnumpy\nndarray\nq\x01K\x00\x85q\x02C\x01bq\x03\x87q\x04Rq\x05.")
	dir := t.TempDir()
	in := newTestInspector(t, nil, nil)
	for _, c := range []struct {
		name string
		data []byte
		want verdict.Verdict
	}{
		{"objects.npy", objectNpy(benign), verdict.Clean},
		{"objects.npz", zipFile(t, "", zmember{"a.npy", objectNpy(benign)}, zmember{"b.npy", npyFile()}), verdict.Clean},
		{"evil.npy", objectNpy(evilPickle2), verdict.Malicious},
		{"evil.npz", zipFile(t, "", zmember{"a.npy", npyFile()}, zmember{"b.npy", objectNpy(evilPickle2)}), verdict.Malicious},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := in.InspectFile(context.Background(), writeFile(t, dir, c.name, c.data), "")
			if r.Verdict != c.want || r.Error != "" {
				t.Errorf("%s %s (error %q), want %s: %s", r.Format, r.Verdict, r.Error, c.want, findingIDs(r.Findings))
			}
			if !slices.ContainsFunc(r.Findings, func(f verdict.Finding) bool { return f.ID == "ARC-025" }) {
				t.Errorf("the embedded pickle is not reported (ARC-025): %s", findingIDs(r.Findings))
			}
		})
	}
}
