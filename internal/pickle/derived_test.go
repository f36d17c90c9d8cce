package pickle

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/llmfence/llmfence/internal/goldentest"
	"github.com/llmfence/llmfence/internal/pythontest"
)

// TestDerivedListCurrent regenerates derived.txt with the system
// interpreter (gen/reach.py walks its standard library) and fails when the
// embedded copy lacks anything it finds: the deny-list follows what the
// standard library actually executes. -update rewrites it.
func TestDerivedListCurrent(t *testing.T) {
	py := pythontest.Need(t)
	cmd := exec.Command(py, "-I", "gen/reach.py")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "PYTHONHASHSEED=0"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gen/reach.py: %v", err)
	}
	if goldentest.Updating() {
		if err := os.WriteFile("derived.txt", out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Every record the standard library gives now must be embedded. The
	// embedded file may hold more: Debian ships parts of the standard
	// library (distutils, lib2to3, tkinter) as packages a machine may lack.
	embedded := map[string]bool{}
	for _, l := range strings.Split(derivedTxt, "\n") {
		embedded[l] = true
	}
	var missing []string
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") && !embedded[l] {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		t.Errorf("derived.txt lacks %d records the standard library of %s gives (first: %q): run go test ./internal/pickle -run TestDerivedListCurrent -update and review the diff", len(missing), py, missing[0])
	}
	if _, err := parseDerived(string(out)); err != nil {
		t.Fatal(err)
	}
}

// TestDerivedFindsPublishedGadgets: the derivation finds, from first
// principles, the standard-library gadgets of published scanner bypasses
// that the hand-written list names, and the string-evaluation and
// process helpers the issue names.
func TestDerivedFindsPublishedGadgets(t *testing.T) {
	d := dataForTest(t).lists.derived
	for _, name := range []string{
		"imaplib.IMAP4_stream", "uuid._get_command_stdout", "pydoc.pipepager", "pydoc.tempfilepager",
		"timeit.timeit", "cProfile.run", "profile.run", "pdb.run", "code.InteractiveInterpreter.runsource",
		"runpy.run_path", "runpy.run_module", "typing.get_type_hints", "ctypes.util.find_library",
		"platform.architecture", "webbrowser.open", "subprocess.Popen", "os.system", "os.popen",
		"logging.config.listen", "doctest.debug_script", "trace.Trace.run", "bdb.Bdb.run",
	} {
		if _, ok := d.reach[name]; !ok {
			t.Errorf("%s is not derived as reaching code execution", name)
		}
	}
	for _, benign := range []string{"argparse.Namespace", "collections.OrderedDict", "datetime.datetime", "enum.Enum", "uuid.uuid4", "re.compile"} {
		if via, ok := d.reach[benign]; ok {
			t.Errorf("%s derived as dangerous (%s)", benign, via)
		}
	}
	if got := d.resolve("random._os.path.os.system"); got != "os.system" {
		t.Errorf("resolve = %q", got)
	}
}
