package audit

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/llmfence/llmfence/internal/risk"
	"github.com/llmfence/llmfence/internal/service"
)

// linkUnit finds the systemd unit that started the runtime (from its
// control group) and, when the process's environment could not be read,
// takes the settings the unit configures instead.
func (a *auditor) linkUnit(rt *runtimeState) {
	p, rec := rt.proc, rt.rec
	name, user := unitOf(p.Cgroup)
	if name == "" {
		return
	}
	rec.Unit = name
	for i := range a.units {
		u := &a.units[i]
		if u.Name == name && u.UserUnit == user && (!user || u.Owner == "" || u.Owner == rec.User) {
			rt.unit = u
			break
		}
	}
	if rt.unit == nil {
		return
	}
	u := rt.unit
	if p.Env == nil {
		for _, v := range readEnvSettings(rt.spec, u.Env, "") {
			v.source = fmt.Sprintf("%s (configured; the process environment could not be read)", u.EnvSource[v.name])
			rt.values = append(rt.values, v)
		}
		return
	}
	for _, s := range rt.spec.Settings {
		if s.From != "env" || s.Role == "" {
			continue
		}
		want, inUnit := u.Env[s.Name]
		have, inEnv := p.Env[s.Name]
		if inUnit && (!inEnv || have != want) {
			shown := value{setting: &s, name: s.Name, raw: want}.shown()
			rec.Notes = append(rec.Notes, fmt.Sprintf("%s sets %s=%s (%s) but the running process has %s: the unit changed after it started; a restart applies it",
				u.Name, s.Name, shown, u.EnvSource[s.Name], orUnset(inEnv, value{setting: &s, name: s.Name, raw: have}.shown())))
		}
	}
}

func orUnset(set bool, v string) string {
	if !set {
		return "it unset"
	}
	return v
}

// settle records the settings and works out what they mean; when the
// sockets could not be read, a configured bind beyond loopback still
// counts as exposed (never a false "safe").
func (a *auditor) settle(rt *runtimeState) {
	rec := rt.rec
	for _, v := range rt.values {
		rec.Settings[v.name] = v.shown()
		rec.SettingSources[v.name] = v.source
	}
	cwd := ""
	if rt.proc != nil {
		cwd = rt.proc.Cwd
	}
	f, err := derive(rt.spec, rt.values, cwd)
	if err != nil {
		a.runtimeNote(rec, "could not work out its settings: %v", err)
	}
	rt.facts = f
	if rec.Exposure == ExposureUnknown && hostScope(f.bindHost) != scopeLoopback {
		rt.exposed = true
		rec.Notes = append(rec.Notes, fmt.Sprintf("its sockets could not be read; taken as exposed because its settings bind it to %s (%s)", bindText(f), bindWhy(f)))
	}
	if len(f.public) > 0 {
		rt.exposed = true
	}
	rec.Exposed = rt.exposed
}

func bindText(f facts) string {
	h := f.bindHost
	if h == "" {
		h = "0.0.0.0"
	}
	return netJoin(h, f.bindPort)
}

func netJoin(h string, port int) string {
	if strings.Contains(h, ":") {
		return fmt.Sprintf("[%s]:%d", h, port)
	}
	return fmt.Sprintf("%s:%d", h, port)
}

// probe asks the runtime what it is, on its own loopback port, with the
// scan's read-only fingerprint requests. Only runtimes in the audit's own
// network namespace are asked: its loopback is the only one it can reach.
func (a *auditor) probe(ctx context.Context, rt *runtimeState) {
	p, rec := rt.proc, rt.rec
	if a.Prober == nil || len(rt.listen) == 0 {
		return
	}
	switch {
	case p.NetNS == "" || a.self.NetNS == "":
		rec.Notes = append(rec.Notes, "its network namespace could not be read, so it was not asked on loopback")
		return
	case p.NetNS != a.self.NetNS:
		rec.Notes = append(rec.Notes, fmt.Sprintf("runs in another network namespace (%s), so it was not asked on loopback; to confirm, run the audit inside it: nsenter --net=/proc/%d/ns/net llmfence audit", p.NetNS, p.PID))
		return
	}
	var targets []netip.AddrPort
	add := func(l netip.AddrPort) {
		var to netip.Addr
		switch a := l.Addr().Unmap(); {
		case a.IsUnspecified() && a.Is4():
			to = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		case a.IsUnspecified():
			to = netip.IPv6Loopback()
		case a.IsLoopback():
			to = a
		default:
			return // a network address: never dialled by the audit
		}
		t := netip.AddrPortFrom(to, l.Port())
		if !slices.Contains(targets, t) {
			targets = append(targets, t)
		}
	}
	for _, l := range rt.listen { // the configured port first
		if int(l.Port()) == rt.facts.bindPort {
			add(l)
		}
	}
	for _, l := range rt.listen {
		add(l)
	}
	if len(targets) > maxProbePorts {
		targets = targets[:maxProbePorts]
	}
	for _, t := range targets {
		svc, err := a.Prober.Probe(ctx, t)
		pr := &Probe{Addr: t.String()}
		if err != nil {
			pr.Error = err.Error()
		} else {
			pr.Product, pr.Version, pr.Auth, pr.CORS, pr.Models = svc.Product, svc.Version, svc.Auth, svc.CORS, len(svc.Models)
			if svc.Error != "" {
				pr.Error = svc.Error
			}
		}
		if rec.Probe == nil {
			rec.Probe = pr
		}
		if err == nil && svc.Product != "" && svc.Product != "http" {
			rec.Probe, rt.svc = pr, svc
			if svc.Product != rt.spec.ID {
				rec.Notes = append(rec.Notes, fmt.Sprintf("its process looks like %s but port %d answers as %s", rt.spec.Name, t.Port(), svc.Product))
			}
			return
		}
	}
}

// idleUnits turns service definitions of runtimes that are not running into
// runtime records: what would start, as whom, with which settings.
func (a *auditor) idleUnits(ctx context.Context, running []*runtimeState) []*runtimeState {
	var out []*runtimeState
	for i := range a.units {
		u := &a.units[i]
		spec, helper := a.Catalog.identify("", u.ExecStart, u.WorkDir)
		if spec == nil || helper || slices.ContainsFunc(running, func(rt *runtimeState) bool { return rt.unit == u }) {
			continue
		}
		user := u.User
		if u.UserUnit {
			user = u.Owner
		}
		if user == "" && !u.UserUnit {
			user = a.userName(0)
		}
		rec := &Runtime{
			Kind: KindRuntime, Host: a.machine.Host, Product: spec.ID, UID: -1, User: user,
			Cmdline: redactArgv(spec, u.ExecStart), Unit: u.Name, Listen: []string{}, Exposure: ExposureNotRunning,
			Settings: map[string]string{}, SettingSources: map[string]string{}, Findings: []service.Finding{}, Complete: true,
		}
		for _, usr := range a.users {
			if usr.Name == user {
				rec.UID = usr.UID
			}
		}
		if u.UserUnit && u.Owner == "" {
			rec.Notes = append(rec.Notes, "a user unit for every user ("+u.Path+")")
		}
		rec.Notes = append(rec.Notes, fmt.Sprintf("not running; defined by %s", strings.Join(append([]string{u.Path}, u.DropIns...), ", ")))
		for _, n := range u.Notes {
			a.runtimeNote(rec, "%s", n)
		}
		rt := &runtimeState{spec: spec, rec: rec, unit: u}
		for _, v := range readEnvSettings(spec, u.Env, "") {
			v.source = u.EnvSource[v.name]
			rt.values = append(rt.values, v)
		}
		for _, v := range readFlagSettings(spec, u.ExecStart) {
			v.source = "ExecStart= in " + u.Path
			rt.values = append(rt.values, v)
		}
		if usr, ok := a.users[rec.UID]; ok {
			rt.home = usr.Home
		}
		a.settle(rt)
		out = append(out, rt)
	}
	return out
}

// judgeRuntime raises the audit's own findings, rates the runtime with the
// findings catalogue and CVE table (the probe's answer, or what the audit
// knows of it), and writes the fix first.
func (a *auditor) judgeRuntime(rt *runtimeState, stores []*storeState) error {
	rec, f := rt.rec, rt.facts
	port := f.bindPort
	if len(rt.listen) > 0 && !slices.ContainsFunc(rt.listen, func(l netip.AddrPort) bool { return int(l.Port()) == port }) {
		port = int(rt.listen[0].Port())
	}
	authOn := f.authSet && !f.authOff
	if rt.svc != nil && rt.svc.Auth != service.AuthUnknown {
		authOn = rt.svc.Auth == service.AuthRequired
	}
	var raise []risk.Raised
	exposure := func(detail string) {
		r := risk.Raised{ID: "LLMF-013", Detail: detail}
		if authOn {
			r.Variant = "auth_required"
			r.Detail += "; it demands credentials itself (" + f.authFrom + ")"
		}
		raise = append(raise, r)
	}
	var beyond []string
	for _, l := range rt.listen {
		if addrScope(l.Addr()) != scopeLoopback {
			beyond = append(beyond, l.String())
		}
	}
	switch {
	case len(beyond) > 0:
		exposure(fmt.Sprintf("listening on %s; %s", strings.Join(beyond, ", "), bindWhy(f)))
	case rt.exposed && len(f.public) == 0:
		exposure(fmt.Sprintf("its settings bind it to %s (%s); its sockets could not be read", bindText(f), bindWhy(f)))
	case !rec.Running && hostScope(f.bindHost) != scopeLoopback:
		exposure(fmt.Sprintf("%s would make it listen on %s (%s); not running now", rec.Unit, bindText(f), bindWhy(f)))
	}
	for _, pub := range f.public {
		raise = append(raise, risk.Raised{ID: "LLMF-013", Detail: pub + " publishes it beyond this machine (a public tunnel or API)"})
	}
	if f.originsAny {
		d := "any origin allowed: " + f.originsFrom
		if f.originsFrom == "default" {
			d = rt.spec.Name + " allows any origin unless told otherwise"
		}
		raise = append(raise, risk.Raised{ID: "LLMF-014", Detail: d})
	}
	if rec.Running && rt.proc.UID == 0 {
		d := "runs as uid 0"
		if rec.Container != nil {
			d += fmt.Sprintf(" (in %s container %s: root there is root on the host unless the container maps users)", rec.Container.Engine, rec.Container.ID)
		}
		raise = append(raise, risk.Raised{ID: "LLMF-015", Detail: d})
	}
	for _, st := range stores {
		if len(st.scan.cloud) == 0 || f.cloudOff || !slices.Contains(st.users, rt) {
			continue
		}
		r := risk.Raised{ID: "LLMF-017", Detail: fmt.Sprintf("%s in %s: %s", plural(len(st.scan.cloud), "cloud model", "cloud models"), st.shown, strings.Join(limitList(st.scan.cloud, 5), ", "))}
		if rt.exposed {
			r.Variant = "exposed"
		}
		raise = append(raise, r)
	}

	svc := &service.Service{Host: "127.0.0.1", Port: port, Product: rt.spec.ID, Auth: service.AuthUnknown, Models: []service.Model{}}
	if rt.svc != nil {
		cp := *rt.svc
		svc = &cp
		svc.Product = rt.spec.ID
	}
	if len(beyond) > 0 { // rated as what it is: reachable at that address
		if ap, err := netip.ParseAddrPort(beyond[0]); err == nil {
			svc.Host = ap.Addr().String()
		}
	}
	switch {
	case rt.svc != nil && rt.svc.Version != "":
		rec.VersionSource = "probe"
	case rt.proc != nil:
		if v := versionFromBuild(a.Reader.Executable(rt.proc), rt.spec); v != "" {
			svc.Version, rec.VersionSource = v, "build info"
		}
	}
	rec.Version = svc.Version
	var omit []string
	if !rt.exposed {
		omit = append(omit, a.Catalog.NetworkOnly...)
	}
	if rec.VersionSource != "probe" {
		omit = append(omit, "LLMF-011") // only an answer on the network discloses a version
	}
	if err := a.Judge.AnnotateWith(svc, risk.Adjust{Raise: raise, Omit: omit}); err != nil {
		return fmt.Errorf("rating %s (pid %d): %w", rt.spec.Name, rec.PID, err)
	}
	rec.Findings, rec.Risk = svc.Findings, svc.Risk
	if !rec.Complete && rec.Risk.Rank() <= service.SeverityInfo.Rank() {
		rec.Risk = RiskUnknown // what could not be read may be worse
	}
	rec.Remediation, rec.RemediationMsgs = a.remediation(rt, svc, port, raise)
	return nil
}

// bindWhy says which setting decided where it listens.
func bindWhy(f facts) string {
	if f.bindVal == nil {
		return "its default"
	}
	return f.bindFrom
}
