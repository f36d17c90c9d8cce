package audit

import (
	"path"
	"slices"
	"strings"
)

// invocation is how a process was started, as the matcher sees it.
type invocation struct {
	programs    []string // base names: executable, argv[0], or an interpreter's script
	programPath string   // the script's or executable's path
	subcommand  string   // first positional argument after the program
	module      string   // python -m MODULE
	args        []string
	cwd         string
}

// interpreter reports whether a program base name is a language runtime
// whose script (or -m module) is the real program.
func interpreter(base string) bool {
	for _, g := range []string{"python", "python[0-9]*", "pypy*", "node", "bun", "deno"} {
		if ok, _ := path.Match(g, base); ok {
			return true
		}
	}
	return false
}

// pythonValueOpts are interpreter options that take the next argument.
var pythonValueOpts = map[string]bool{"-W": true, "-X": true, "-Q": true, "--check-hash-based-pycs": true}

func invocationOf(exe string, argv []string, cwd string) invocation {
	inv := invocation{args: argv, cwd: cwd}
	// env [-i] [-u NAME] [NAME=VALUE]... PROGRAM: the program is what runs
	// (units and wrapper scripts often start it so).
	if len(argv) > 0 && path.Base(argv[0]) == "env" {
		i := 1
		for i < len(argv) && (strings.HasPrefix(argv[i], "-") || strings.Contains(argv[i], "=")) {
			if argv[i] == "-u" || argv[i] == "--unset" || argv[i] == "-C" || argv[i] == "--chdir" {
				i++
			}
			i++
		}
		argv, exe = argv[min(i, len(argv)):], ""
	}
	if len(argv) == 0 {
		return inv
	}
	argv0 := path.Base(argv[0])
	if interpreter(argv0) || (exe != "" && interpreter(path.Base(exe))) {
		for i := 1; i < len(argv); i++ {
			a := argv[i]
			switch {
			case a == "-m" && i+1 < len(argv):
				inv.module = argv[i+1]
				inv.subcommand = firstPositional(argv[i+2:])
				return inv
			case strings.HasPrefix(a, "-m") && len(a) > 2:
				inv.module = a[2:]
				inv.subcommand = firstPositional(argv[i+1:])
				return inv
			case a == "-c":
				return inv
			case pythonValueOpts[a]:
				i++
			case strings.HasPrefix(a, "-"):
			default:
				inv.programs = []string{path.Base(a)}
				inv.programPath = a
				inv.subcommand = firstPositional(argv[i+1:])
				return inv
			}
		}
		return inv
	}
	inv.programs = []string{argv0}
	inv.programPath = argv[0]
	if exe != "" {
		if b := path.Base(exe); b != argv0 {
			inv.programs = append(inv.programs, b)
		}
		if !strings.Contains(argv[0], "/") {
			inv.programPath = exe
		}
	}
	inv.subcommand = firstPositional(argv[1:])
	return inv
}

// firstPositional is the first argument that is not a flag. Flags that
// take a value in front of a subcommand are rare and not told apart.
func firstPositional(args []string) string {
	for _, a := range args {
		if a == "--" {
			return ""
		}
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

func (m *MatchRule) matches(inv invocation) bool {
	if len(m.Programs) > 0 {
		hit := false
		for _, g := range m.Programs {
			for _, p := range inv.programs {
				if ok, _ := path.Match(g, p); ok {
					hit = true
				}
			}
		}
		if !hit {
			return false
		}
	}
	if m.Subcommands != nil && !slices.Contains(m.Subcommands, inv.subcommand) {
		return false
	}
	if m.Module != "" && inv.module != m.Module {
		return false
	}
	if m.Arg != "" && !slices.Contains(inv.args, m.Arg) {
		return false
	}
	if m.PathContains != "" && !strings.Contains(inv.programPath, m.PathContains) && !strings.Contains(inv.cwd, m.PathContains) {
		return false
	}
	return true
}

// identify returns the runtime a command is, and whether it is one of the
// runtime's helper processes rather than its server.
func (c *Catalog) identify(exe string, argv []string, cwd string) (spec *RuntimeSpec, helper bool) {
	inv := invocationOf(exe, argv, cwd)
	for i := range c.Runtimes {
		r := &c.Runtimes[i]
		for j := range r.Helpers {
			if r.Helpers[j].matches(inv) {
				return r, true
			}
		}
		for j := range r.Match {
			if r.Match[j].matches(inv) {
				return r, false
			}
		}
	}
	return nil, false
}
