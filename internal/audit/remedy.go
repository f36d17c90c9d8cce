package audit

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// dropInName sorts after systemctl edit's override.conf, so its settings
// win over earlier drop-ins.
const dropInName = "zz-llmfence-loopback.conf"

// remediation puts the exact commands for this machine first: how to bind
// this runtime, as it was started, to loopback, and the guard to put in
// front. The rest is the catalogue's remediation, without the generic
// form of the fix already given. The messages pair with the lines: the
// machine's own lines say their explanation as audit.fix.* messages with
// the commands as arguments (a line that is only a command has none).
func (a *auditor) remediation(rt *runtimeState, svc *service.Service, port int, raised []risk.Raised) (string, []service.Message) {
	bound := false
	for _, r := range raised {
		bound = bound || r.ID == "LLMF-013"
	}
	if !bound {
		return svc.Remediation, svc.RemediationMsgs
	}
	var lines []string
	if svc.Remediation != "" {
		lines = strings.Split(svc.Remediation, "\n")
	}
	msgs := svc.RemediationMsgs
	if len(msgs) != len(lines) {
		msgs = make([]service.Message, len(lines))
	}
	var outLines []string
	var outMsgs []service.Message
	for _, l := range a.bindFix(rt, port) {
		outLines, outMsgs = append(outLines, l.text), append(outMsgs, l.msg)
	}
	// The catalogue's generic "bind it to loopback, put the guard in
	// front" (LLMF-013, LLMF-001) is what the machine's lines spell out.
	generic := map[string]bool{}
	for _, id := range []string{"LLMF-013", "LLMF-001"} {
		generic[a.Judge.Engine().FixText(id, rt.spec.ID, port)] = true
	}
	for i, l := range lines {
		if !generic[l] {
			outLines, outMsgs = append(outLines, l), append(outMsgs, msgs[i])
		}
	}
	return strings.Join(outLines, "\n"), outMsgs
}

// fixLine is one line of a fix: its English, and the message it was
// written from (an empty ID for a line that is only a command).
type fixLine struct {
	text string
	msg  service.Message
}

// say is a fix line: its English and its message's ID and arguments.
func say(english, id string, kv ...string) fixLine {
	m := service.Message{ID: id, Args: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Args[kv[i]] = kv[i+1]
	}
	return fixLine{text: english, msg: m}
}

// command is a fix line that is only a command: the same in every language.
func command(c string) fixLine { return fixLine{text: c} }

// bindFix says, as commands for this machine, how to bind the runtime to
// loopback and put llmfence guard in front.
func (a *auditor) bindFix(rt *runtimeState, port int) []fixLine {
	f, rec, spec := rt.facts, rt.rec, rt.spec
	guard := port + 1
	if guard > 65535 {
		guard = 8080
	}
	guardCmd := fmt.Sprintf("llmfence guard --upstream http://127.0.0.1:%d --listen :%d", port, guard)
	guardLine := say("Then put llmfence guard in front for the clients that need it: "+guardCmd, "audit.fix.guard", "command", guardCmd)
	var out []fixLine
	if len(f.public) > 0 {
		out = append(out, say(fmt.Sprintf("Remove %s from its command line: it publishes %s beyond this machine.", strings.Join(f.public, " and "), spec.Name),
			"audit.fix.public", "flags", strings.Join(f.public, " "), "product", spec.Name))
		if !rt.exposed || len(rt.listen) == 0 {
			return append(out, guardLine)
		}
	}
	if rec.Container != nil {
		docker, compose := fmt.Sprintf("docker run -p 127.0.0.1:%d:%d", port, port), fmt.Sprintf("\"127.0.0.1:%d:%d\"", port, port)
		return append(out, say(fmt.Sprintf("It runs in %s container %s, where it has to listen on every interface: publish its port on the host's loopback only (%s, or %s under ports: in compose) and recreate the container.",
			rec.Container.Engine, rec.Container.ID, docker, compose), "audit.fix.container",
			"engine", rec.Container.Engine, "id", rec.Container.ID, "docker", docker, "compose", compose), guardLine)
	}
	// The setting to change: the one that bound it, else the runtime's
	// own environment or command-line setting for the host.
	v := f.bindVal
	var envSet, flagSet *Setting
	for i := range spec.Settings {
		s := &spec.Settings[i]
		if s.Role != roleBind && s.Role != roleBindHost {
			continue
		}
		if s.From == "env" && envSet == nil {
			envSet = s
		}
		if s.From == "flag" && flagSet == nil {
			flagSet = s
		}
	}
	useEnv := envSet != nil && (v == nil || v.setting.From == "env")
	if v != nil && v.setting.Role == roleListenAll {
		useEnv = false
	}
	name, val := "", ""
	if useEnv {
		if v != nil {
			name = v.name
			envSet = v.setting
		} else {
			name = envSet.Name
		}
		val = loopbackValue(envSet, port)
	}
	u := rt.unit
	restart := func(sudo, ctl string) string {
		if rec.Running {
			return fmt.Sprintf(" && %s%s daemon-reload && %s%s restart %s", sudo, ctl, sudo, ctl, u.Name)
		}
		return fmt.Sprintf(" && %s%s daemon-reload", sudo, ctl)
	}
	switch {
	case u != nil && useEnv && v != nil && strings.HasPrefix(v.source, "EnvironmentFile "):
		file := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(v.source, "EnvironmentFile "), " (configured; the process environment could not be read)"))
		out = append(out, command(fmt.Sprintf("sudo sed -i %s %s%s", shQuote("s|^"+regexp.QuoteMeta(name)+"=.*|"+name+"="+val+"|"), shQuote(file), restart("sudo ", "systemctl"))))
	case u != nil && useEnv && !u.UserUnit:
		dir := "/etc/systemd/system/" + u.Name + ".d"
		out = append(out, command(fmt.Sprintf("sudo mkdir -p %s && printf '[Service]\\nEnvironment=\"%s=%s\"\\n' | sudo tee %s/%s >/dev/null%s",
			dir, name, val, dir, dropInName, restart("sudo ", "systemctl"))))
	case u != nil && useEnv:
		dir := "~/.config/systemd/user/" + u.Name + ".d"
		cmd := fmt.Sprintf("mkdir -p %s && printf '[Service]\\nEnvironment=\"%s=%s\"\\n' | tee %s/%s >/dev/null%s",
			dir, name, val, dir, dropInName, restart("", "systemctl --user"))
		out = append(out, say(fmt.Sprintf("As %s: %s", orUnknown(rec.User), cmd), "audit.fix.as_user", "user", orUnknown(rec.User), "command", cmd))
	case u != nil:
		ctl, sudo := "systemctl", "sudo "
		if u.UserUnit {
			ctl, sudo = "systemctl --user", ""
		}
		edit, then := fmt.Sprintf("%s%s edit --full %s", sudo, ctl, u.Name), strings.TrimPrefix(restart(sudo, ctl), " && ")
		change := flagChange(v, flagSet, port)
		out = append(out, say(fmt.Sprintf("Run %s and in ExecStart= %s; then %s", edit, change.text, then), "audit.fix.edit_unit",
			append([]string{"edit", edit, "then", then}, change.args("change")...)...))
	case useEnv:
		how, cmd := startedHow(rec), fmt.Sprintf("%s=%s %s", name, val, shJoin(rec.Cmdline))
		out = append(out, say(fmt.Sprintf("%s: stop it and start it bound to loopback, %s, and remove %s from the script or shell profile that set it.",
			how.text, cmd, name), "audit.fix.restart_env", append([]string{"command", cmd, "name", name}, how.args("how")...)...))
	default:
		how, change := startedHow(rec), flagChange(v, flagSet, port)
		out = append(out, say(fmt.Sprintf("%s: stop it and start it again; in its command line, %s.", how.text, change.text),
			"audit.fix.restart_flag", append(how.args("how"), change.args("change")...)...))
	}
	return append(out, guardLine)
}

// loopbackValue is the loopback value of a bind setting.
func loopbackValue(s *Setting, port int) string {
	if s.Role == roleBind {
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	return "127.0.0.1"
}

// phrase is part of a fix line: its English and the message it was
// written from, passed to the line's message as the argument K (English),
// K_msg (the ID) and K.NAME (its arguments).
type phrase struct {
	text, id string
	kv       []string
}

func (p phrase) args(k string) []string {
	out := []string{k, p.text, k + "_msg", p.id}
	for i := 0; i+1 < len(p.kv); i += 2 {
		out = append(out, k+"."+p.kv[i], p.kv[i+1])
	}
	return out
}

// flagChange says how to change the command line.
func flagChange(v *value, flagSet *Setting, port int) phrase {
	switch {
	case v != nil && v.setting.Role == roleListenAll:
		return phrase{"remove " + v.name, "audit.fix.change.remove", []string{"flag", v.name}}
	case v != nil && v.setting.From == "flag":
		from, to := v.name+" "+v.shown(), v.name+" "+loopbackValue(v.setting, port)
		return phrase{fmt.Sprintf("change %s to %s", from, to), "audit.fix.change.change", []string{"from", from, "to", to}}
	case flagSet != nil:
		return phrase{fmt.Sprintf("add %s 127.0.0.1 (without it, it listens on every interface)", flagSet.Name), "audit.fix.change.add",
			[]string{"flag", flagSet.Name}}
	}
	return phrase{"bind it to 127.0.0.1", "audit.fix.change.bind", nil}
}

var shSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shQuote quotes a word for a POSIX shell.
func shQuote(s string) string {
	if s != "" && shSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shQuote(a)
	}
	return strings.Join(q, " ")
}

// startedHow says how a runtime without a unit of its own was started.
func startedHow(rec *Runtime) phrase {
	pid, user := strconv.Itoa(rec.PID), orUnknown(rec.User)
	if rec.Unit != "" {
		return phrase{fmt.Sprintf("It was started inside %s (pid %s, user %s), not by a unit of its own", rec.Unit, pid, user),
			"audit.fix.started.inside", []string{"unit", rec.Unit, "pid", pid, "user", user}}
	}
	return phrase{fmt.Sprintf("It was started by hand (pid %s, user %s), not by a service manager", pid, user),
		"audit.fix.started.by_hand", []string{"pid", pid, "user", user}}
}
