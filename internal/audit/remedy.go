package audit

import (
	"fmt"
	"regexp"
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
// form of the fix already given. The messages pair with the lines (the
// machine's own lines have none yet, so they are said in English).
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
	machine := a.bindFix(rt, port)
	outLines, outMsgs := machine, make([]service.Message, len(machine))
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

// bindFix says, as commands for this machine, how to bind the runtime to
// loopback and put llmfence guard in front.
func (a *auditor) bindFix(rt *runtimeState, port int) []string {
	f, rec, spec := rt.facts, rt.rec, rt.spec
	guard := port + 1
	if guard > 65535 {
		guard = 8080
	}
	guardLine := fmt.Sprintf("Then put llmfence guard in front for the clients that need it: llmfence guard --upstream http://127.0.0.1:%d --listen :%d", port, guard)
	var out []string
	if len(f.public) > 0 {
		out = append(out, fmt.Sprintf("Remove %s from its command line: it publishes %s beyond this machine.", strings.Join(f.public, " and "), spec.Name))
		if !rt.exposed || len(rt.listen) == 0 {
			return append(out, guardLine)
		}
	}
	if rec.Container != nil {
		return append(out, fmt.Sprintf("It runs in %s container %s, where it has to listen on every interface: publish its port on the host's loopback only (docker run -p 127.0.0.1:%d:%d, or \"127.0.0.1:%d:%d\" under ports: in compose) and recreate the container.",
			rec.Container.Engine, rec.Container.ID, port, port, port, port), guardLine)
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
		out = append(out, fmt.Sprintf("sudo sed -i %s %s%s", shQuote("s|^"+regexp.QuoteMeta(name)+"=.*|"+name+"="+val+"|"), shQuote(file), restart("sudo ", "systemctl")))
	case u != nil && useEnv && !u.UserUnit:
		dir := "/etc/systemd/system/" + u.Name + ".d"
		out = append(out, fmt.Sprintf("sudo mkdir -p %s && printf '[Service]\\nEnvironment=\"%s=%s\"\\n' | sudo tee %s/%s >/dev/null%s",
			dir, name, val, dir, dropInName, restart("sudo ", "systemctl")))
	case u != nil && useEnv:
		dir := "~/.config/systemd/user/" + u.Name + ".d"
		out = append(out, fmt.Sprintf("As %s: mkdir -p %s && printf '[Service]\\nEnvironment=\"%s=%s\"\\n' | tee %s/%s >/dev/null%s",
			orUnknown(rec.User), dir, name, val, dir, dropInName, restart("", "systemctl --user")))
	case u != nil:
		ctl, sudo := "systemctl", "sudo "
		if u.UserUnit {
			ctl, sudo = "systemctl --user", ""
		}
		out = append(out, fmt.Sprintf("Run %s%s edit --full %s and in ExecStart= %s; then %s", sudo, ctl, u.Name, flagChange(v, flagSet, port), strings.TrimPrefix(restart(sudo, ctl), " && ")))
	case useEnv:
		out = append(out, fmt.Sprintf("%s: stop it and start it bound to loopback, %s=%s %s, and remove %s from the script or shell profile that set it.",
			startedHow(rec), name, val, shJoin(rec.Cmdline), name))
	default:
		out = append(out, fmt.Sprintf("%s: stop it and start it again; in its command line, %s.",
			startedHow(rec), flagChange(v, flagSet, port)))
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

// flagChange says how to change the command line.
func flagChange(v *value, flagSet *Setting, port int) string {
	switch {
	case v != nil && v.setting.Role == roleListenAll:
		return "remove " + v.name
	case v != nil && v.setting.From == "flag":
		return fmt.Sprintf("change %s %s to %s %s", v.name, v.shown(), v.name, loopbackValue(v.setting, port))
	case flagSet != nil:
		return fmt.Sprintf("add %s 127.0.0.1 (without it, it listens on every interface)", flagSet.Name)
	}
	return "bind it to 127.0.0.1"
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
func startedHow(rec *Runtime) string {
	if rec.Unit != "" {
		return fmt.Sprintf("It was started inside %s (pid %d, user %s), not by a unit of its own", rec.Unit, rec.PID, orUnknown(rec.User))
	}
	return fmt.Sprintf("It was started by hand (pid %d, user %s), not by a service manager", rec.PID, orUnknown(rec.User))
}
