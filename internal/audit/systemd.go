package audit

import (
	"bufio"
	"bytes"
	"strings"

	"github.com/llmfence/llmfence/internal/service"
)

// Limits of the systemd unit reader.
const (
	maxUnitFile  = 1 << 20  // a unit file or drop-in, or an EnvironmentFile
	maxUnitLine  = 64 << 10 // one logical line, continuations included
	maxUnitVars  = 4096     // environment assignments kept per unit
	maxUnitFiles = 20000    // unit files looked at per directory
	maxDropIns   = 256      // drop-ins applied per unit
)

// unitState accumulates the [Service] settings of a unit file and its
// drop-ins, applied in order: a later assignment wins, and an empty
// assignment resets a list, as systemd does.
type unitState struct {
	execStart []string
	env       []envAssign // Environment=, in order
	envFiles  []envFileRef
	user      string
	workDir   string
	notes     []service.Message
}

type envAssign struct {
	key, val, source string
}

type envFileRef struct {
	path     string
	optional bool // "-" prefix: a missing file is fine
	source   string
}

// apply reads one unit file or drop-in (source names it in notes).
func (u *unitState) apply(data []byte, source string) {
	section := ""
	for _, line := range logicalLines(data) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if line[0] == '[' {
			section = strings.TrimSuffix(strings.TrimPrefix(line, "["), "]")
			continue
		}
		if section != "Service" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		switch key {
		case "ExecStart":
			if val == "" {
				u.execStart = nil
				continue
			}
			val = strings.TrimLeft(val, "-@:+!|")
			u.execStart = unitWords(val)
		case "Environment":
			if val == "" {
				u.env = nil
				continue
			}
			for _, w := range unitWords(val) {
				k, v, ok := strings.Cut(w, "=")
				if !ok || k == "" {
					continue
				}
				if len(u.env) >= maxUnitVars {
					u.notes = append(u.notes, msg("audit.note.too_many_env", "path", source))
					break
				}
				u.env = append(u.env, envAssign{key: k, val: v, source: source})
			}
		case "EnvironmentFile":
			if val == "" {
				u.envFiles = nil
				continue
			}
			ref := envFileRef{path: val, source: source}
			if strings.HasPrefix(val, "-") {
				ref.optional, ref.path = true, strings.TrimSpace(val[1:])
			}
			u.envFiles = append(u.envFiles, ref)
		case "User":
			u.user = val
		case "WorkingDirectory":
			u.workDir = strings.TrimPrefix(val, "-")
		}
	}
}

// logicalLines splits unit-file text into lines, joining lines that end in
// a backslash with the next; a logical line is cut at maxUnitLine.
func logicalLines(data []byte) []string {
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), maxUnitLine)
	for sc.Scan() {
		l := sc.Text()
		cont := strings.HasSuffix(l, `\`)
		if cont {
			l = strings.TrimSuffix(l, `\`) + " "
		}
		if cur.Len()+len(l) <= maxUnitLine {
			cur.WriteString(l)
		}
		if !cont {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// unitWords splits a value into words the way systemd does for
// Environment= and ExecStart=: whitespace separates words, double or single
// quotes group them, and backslash escapes the next character (\n, \t and
// the like become those characters).
func unitWords(s string) []string {
	var words []string
	var w strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(unescape(s[i]))
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				w.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

func unescape(c byte) byte {
	switch c {
	case 'n':
		return '\n'
	case 't':
		return '\t'
	case 'r':
		return '\r'
	}
	return c
}

// parseEnvFile reads KEY=VALUE lines of an EnvironmentFile: # and ;
// comments, optional quotes around the value, backslash continuations.
func parseEnvFile(data []byte) [][2]string {
	var out [][2]string
	for _, line := range logicalLines(data) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, [2]string{k, v})
		if len(out) >= maxUnitVars {
			break
		}
	}
	return out
}
