package audit

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
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
			v.src = msg("audit.source.configured", nest("source", u.EnvSrc[v.name])...)
			v.source = a.words.english(v.src)
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
			has := []string{"has", value{setting: &s, name: s.Name, raw: have}.shown()}
			if !inEnv {
				has = nest("has", msg("audit.note.unset"))
			}
			a.runtimeInfo(rec, msg("audit.note.unit_changed", args([]string{"unit", u.Name, "name", s.Name, "value", shown},
				nest("source", u.EnvSrc[s.Name]), has)...))
		}
	}
}

// settle records the settings and works out what they mean; when the
// sockets could not be read, a configured bind beyond loopback still
// counts as exposed (never a false "safe").
func (a *auditor) settle(rt *runtimeState) {
	rec := rt.rec
	for _, v := range rt.values {
		rec.Settings[v.name] = v.shown()
		rec.SettingSources[v.name] = v.source
		if v.src.ID != "" {
			if rec.SettingSourceMsgs == nil {
				rec.SettingSourceMsgs = map[string]service.Message{}
			}
			_, rec.SettingSourceMsgs[v.name] = a.words.finish(v.src)
		}
	}
	cwd := ""
	if rt.proc != nil {
		cwd = rt.proc.Cwd
	}
	f, err := derive(rt.spec, rt.values, cwd)
	if err != nil {
		a.runtimeNote(rec, msg("audit.note.settings", reason("reason", err.Error())...))
	}
	rt.facts = f
	if rec.Exposure == ExposureUnknown && hostScope(f.bindHost) != scopeLoopback {
		rt.exposed = true
		a.runtimeInfo(rec, msg("audit.note.taken_exposed", args([]string{"addr", bindText(f)}, nest("why", bindWhy(f)))...))
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
		a.runtimeInfo(rec, msg("audit.note.netns_unknown"))
		return
	case p.NetNS != a.self.NetNS:
		a.runtimeInfo(rec, msg("audit.note.not_probed", "netns", p.NetNS, "command", fmt.Sprintf("nsenter --net=/proc/%d/ns/net llmfence audit", p.PID)))
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
				a.runtimeInfo(rec, msg("audit.note.answers_as", "runtime", rt.spec.Name, "port", strconv.Itoa(int(t.Port())), "product", svc.Product))
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
			a.runtimeInfo(rec, msg("audit.note.global_user_unit", "path", u.Path))
		}
		a.runtimeInfo(rec, msg("audit.note.not_running", "files", strings.Join(append([]string{u.Path}, u.DropIns...), ", ")))
		for _, n := range u.Notes {
			a.runtimeNote(rec, n)
		}
		rt := &runtimeState{spec: spec, rec: rec, unit: u}
		for _, v := range readEnvSettings(spec, u.Env, "") {
			v.source, v.src = u.EnvSource[v.name], u.EnvSrc[v.name]
			rt.values = append(rt.values, v)
		}
		for _, v := range readFlagSettings(spec, u.ExecStart) {
			v.src = msg("audit.source.exec_start", "path", u.Path)
			v.source = a.words.english(v.src)
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
	var details []service.Message // the messages of raise's details, in order
	add := func(id, variant string, m service.Message) {
		detail, fm := a.words.finish(m)
		raise, details = append(raise, risk.Raised{ID: id, Variant: variant, Detail: detail}), append(details, fm)
	}
	exposure := func(m service.Message) {
		variant := ""
		if authOn {
			variant = "auth_required"
			m = msg("audit.detail.auth_itself", args(nest("detail", m), nest("from", f.authFrom))...)
		}
		add("LLMF-013", variant, m)
	}
	var beyond []string
	for _, l := range rt.listen {
		if addrScope(l.Addr()) != scopeLoopback {
			beyond = append(beyond, l.String())
		}
	}
	switch {
	case len(beyond) > 0:
		exposure(msg("audit.detail.listening", args([]string{"addrs", strings.Join(beyond, ", ")}, nest("why", bindWhy(f)))...))
	case rt.exposed && len(f.public) == 0:
		exposure(msg("audit.detail.settings_bind", args([]string{"addr", bindText(f)}, nest("why", bindWhy(f)))...))
	case !rec.Running && hostScope(f.bindHost) != scopeLoopback:
		exposure(msg("audit.detail.would_listen", args([]string{"unit", rec.Unit, "addr", bindText(f)}, nest("why", bindWhy(f)))...))
	}
	for _, pub := range f.public {
		add("LLMF-013", "", msg("audit.detail.publishes", "name", pub))
	}
	if f.originsAny {
		m := msg("audit.detail.any_origin", nest("from", f.originsFrom)...)
		if f.originsDefault {
			m = msg("audit.detail.any_origin_default", "runtime", rt.spec.Name)
		}
		add("LLMF-014", "", m)
	}
	if rec.Running && rt.proc.UID == 0 {
		m := msg("audit.detail.root")
		if rec.Container != nil {
			m = msg("audit.detail.root_container", "engine", rec.Container.Engine, "id", rec.Container.ID)
		}
		add("LLMF-015", "", m)
	}
	for _, st := range stores {
		if len(st.scan.cloud) == 0 || f.cloudOff || !slices.Contains(st.users, rt) {
			continue
		}
		variant := ""
		if rt.exposed {
			variant = "exposed"
		}
		add("LLMF-017", variant, msg("audit.detail.cloud_in", args([]string{"count", strconv.Itoa(len(st.scan.cloud)), "store", st.shown},
			list("models", st.scan.cloud, 5, ", "))...))
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
	detailMsgs(rec.Findings, raise, details)
	if !rec.Complete && rec.Risk.Rank() <= service.SeverityInfo.Rank() {
		rec.Risk = RiskUnknown // what could not be read may be worse
	}
	rec.Remediation, rec.RemediationMsgs = a.remediation(rt, svc, port, raise)
	return nil
}

// bindWhy says which setting decided where it listens.
func bindWhy(f facts) service.Message {
	if f.bindVal == nil || f.bindFrom.ID == "" {
		return msg("audit.why.default")
	}
	return f.bindFrom
}

// detailMsgs gives the findings the audit raised the messages their
// details were written from (the judge keeps the English detail only).
func detailMsgs(fs []service.Finding, raised []risk.Raised, msgs []service.Message) {
	for i := range fs {
		for j, r := range raised {
			if fs[i].DetailMsg == nil && fs[i].ID == r.ID && fs[i].Detail == r.Detail {
				m := msgs[j]
				fs[i].DetailMsg = &m
				break
			}
		}
	}
}
