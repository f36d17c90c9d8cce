package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/llmfence/llmfence/internal/service"
)

// maxStoreFindings bounds the inspect findings kept per store.
const maxStoreFindings = 50

// storeState is a model store while it is audited.
type storeState struct {
	kind  *StoreSpec
	shown string // the path as the machine (or the runtime) names it
	open  string // the path the audit opens
	users []*runtimeState
	scan  *storeScan
	rec   *Store
	notes []service.Message
}

// findStores collects the model stores: those the runtimes' settings name
// (or their defaults), and the known places in every home directory. Each
// is walked once, however many ways lead to it.
func (a *auditor) findStores(ctx context.Context, runtimes []*runtimeState) []*storeState {
	var out []*storeState
	byKey := map[string]*storeState{}
	add := func(kind *StoreSpec, shown, open string, rt *runtimeState) {
		key, err := filepath.EvalSymlinks(open)
		loop := err != nil && errors.Is(err, syscall.ELOOP)
		if err != nil {
			key = filepath.Clean(open)
		}
		st := byKey[key]
		if st == nil {
			st = &storeState{kind: kind, shown: shown, open: open}
			if loop {
				st.notes = append(st.notes, msg("audit.note.store_loop", "path", shown))
			}
			byKey[key] = st
			out = append(out, st)
		}
		if rt != nil && !slices.Contains(st.users, rt) {
			st.users = append(st.users, rt)
		}
	}
	for _, rt := range runtimes {
		named := map[string]bool{}
		for _, md := range rt.facts.models {
			kind, _ := a.Catalog.Store(md.store)
			named[md.store] = true
			open := a.Reader.HostPath(rt.proc, md.path)
			ok, err := exists(open)
			switch {
			case err != nil:
				a.runtimeNote(rt.rec, msg("audit.note.model_dir", args([]string{"path", md.path}, nest("from", md.from), reason("reason", errText(err)))...))
			case !ok:
				a.runtimeInfo(rt.rec, msg("audit.note.model_dir_missing", args([]string{"path", md.path}, nest("from", md.from))...))
			default:
				add(kind, md.path, open, rt)
				rt.rec.Stores = append(rt.rec.Stores, md.path)
			}
		}
		for _, id := range rt.spec.Stores {
			if named[id] {
				continue
			}
			kind, _ := a.Catalog.Store(id)
			var cands []string
			if rt.home != "" {
				for _, rel := range kind.Home {
					cands = append(cands, joinHome(rt.home, rel))
				}
			}
			if rt.proc != nil {
				for _, base := range []string{rt.proc.Cwd, filepath.Dir(invocationOf(rt.proc.Exe, rt.proc.Argv, rt.proc.Cwd).programPath)} {
					if !filepath.IsAbs(base) {
						continue
					}
					for _, rel := range kind.Relative {
						cands = append(cands, filepath.Join(base, rel))
					}
				}
			}
			for _, c := range cands {
				open := a.Reader.HostPath(rt.proc, c)
				if ok, _ := exists(open); ok {
					add(kind, c, open, rt)
					rt.rec.Stores = append(rt.rec.Stores, c)
				}
			}
		}
		slices.Sort(rt.rec.Stores)
		rt.rec.Stores = slices.Compact(rt.rec.Stores)
	}
	var unreadable []string
	for _, u := range a.homeDirs() {
		if ctx.Err() != nil {
			break
		}
		homeErr := false
		for i := range a.Catalog.Stores {
			kind := &a.Catalog.Stores[i]
			for _, rel := range kind.Home {
				p := joinHome(u.Home, rel)
				ok, err := exists(a.Reader.HostPath(nil, p))
				if err != nil && !homeErr {
					homeErr = true
					unreadable = append(unreadable, fmt.Sprintf("%s (%s: %s)", u.Home, u.Name, errText(err)))
				}
				if ok {
					add(kind, p, a.Reader.HostPath(nil, p), nil)
				}
			}
		}
	}
	if len(unreadable) > 0 {
		a.machineNote(msg("audit.note.homes", args([]string{"n", strconv.Itoa(len(unreadable))}, list("homes", unreadable, 5, "; "))...))
	}
	for _, st := range out {
		st.scan = scanStore(ctx, st.kind, st.open, a.MaxStoreEntries)
	}
	return out
}

// judgeStore writes a store's record: sizes, the audit's findings on it,
// and with --inspect what inspect found in it.
func (a *auditor) judgeStore(ctx context.Context, st *storeState) {
	s := st.scan
	rec := &Store{
		Kind: KindStore, Host: a.machine.Host, Path: st.shown, Runtime: st.kind.Runtime,
		Models: s.models, Bytes: s.bytes, Largest: s.largest(), CloudModels: s.cloud,
		Owner: a.userName(s.owner), WritableByOthers: s.writable, Findings: []service.Finding{},
		Complete: s.complete && len(st.notes) == 0,
	}
	for _, n := range append(st.notes, s.notes...) {
		a.words.noted(&rec.Notes, &rec.NoteMsgs, n)
	}
	st.rec = rec
	for _, rt := range st.users {
		if rt.rec.PID > 0 {
			rec.UsedBy = append(rec.UsedBy, rt.rec.PID)
		}
	}
	if st.open != a.Reader.HostPath(nil, st.shown) {
		a.words.noted(&rec.Notes, &rec.NoteMsgs, msg("audit.note.read_through", "path", st.open))
	}
	e := a.Judge.Engine()
	var fixes []fixLine
	raise := func(id, variant string, m service.Message) {
		en, ok := e.Entry(id)
		if !ok {
			return
		}
		sev := en.Severity
		if s, ok := en.Variants[variant]; ok && variant != "" {
			sev = s
		}
		detail, fm := a.words.finish(m)
		rec.Findings = append(rec.Findings, service.Finding{ID: id, Severity: sev, Title: en.Title, Detail: detail, DetailMsg: &fm})
	}
	if s.nWrite > 0 {
		raise("LLMF-016", "", msg("audit.detail.writable", args([]string{"count", strconv.Itoa(s.nWrite)}, list("paths", s.writable, writableShown, ", "))...))
		for _, p := range s.writable {
			if p == st.open || strings.HasPrefix(p, st.open+string(filepath.Separator)) {
				fixes = append(fixes, command("sudo chmod -R o-w "+shQuote(st.shown)))
			} else {
				fixes = append(fixes, a.fix(msg("audit.fix.chmod_parent", "command", "sudo chmod o-w "+shQuote(p))))
			}
		}
		fixes = slices.CompactFunc(fixes, func(x, y fixLine) bool { return x.text == y.text })
		inspect := "llmfence inspect " + shQuote(st.shown)
		if st.kind.Layout == layoutOllama {
			inspect = "llmfence inspect --ollama-store " + shQuote(st.shown)
		}
		fixes = append(fixes, a.fix(msg("audit.fix.tampering", "command", inspect)))
	}
	running := slices.ContainsFunc(st.users, func(rt *runtimeState) bool { return rt.rec.Running })
	if len(s.cloud) > 0 && !running {
		raise("LLMF-017", "", msg("audit.detail.cloud", args([]string{"count", strconv.Itoa(len(s.cloud))}, list("models", s.cloud, 5, ", "))...))
	}
	if len(s.cloud) > 0 {
		fixes = append(fixes, a.fix(msg("audit.fix.cloud_rm", "command", "ollama rm "+strings.Join(s.cloud, " "))))
	}
	if a.Inspector != nil {
		sum, fs, err := a.Inspector.InspectStore(ctx, st.kind.Layout, st.open)
		rec.Inspect = &sum
		if err != nil {
			a.words.noted(&rec.Notes, &rec.NoteMsgs, msg("audit.note.inspect_failed", reason("reason", errText(err))...))
			rec.Complete = false
		}
		if sum.Errors > 0 {
			a.words.noted(&rec.Notes, &rec.NoteMsgs, msg("audit.note.inspect_errors", "n", strconv.Itoa(sum.Errors)))
			rec.Complete = false
		}
		if len(fs) > maxStoreFindings {
			a.words.noted(&rec.Notes, &rec.NoteMsgs, msg("audit.note.inspect_many", "n", strconv.Itoa(len(fs)), "max", strconv.Itoa(maxStoreFindings)))
			sort.SliceStable(fs, func(i, j int) bool { return fs[i].Severity.Rank() > fs[j].Severity.Rank() })
			fs = fs[:maxStoreFindings]
		}
		rec.Findings = append(rec.Findings, fs...)
	}
	sort.SliceStable(rec.Findings, func(i, j int) bool { return rec.Findings[i].Severity.Rank() > rec.Findings[j].Severity.Rank() })
	rec.Risk = service.SeverityNone
	for _, f := range rec.Findings {
		if f.Severity.Rank() > rec.Risk.Rank() {
			rec.Risk = f.Severity
		}
	}
	if !rec.Complete && rec.Risk.Rank() <= service.SeverityInfo.Rank() {
		rec.Risk = RiskUnknown // what could not be read may be worse
	}
	var lines []string
	for _, f := range fixes {
		lines, rec.RemediationMsgs = append(lines, f.text), append(rec.RemediationMsgs, f.msg)
	}
	rec.Remediation = strings.Join(lines, "\n")
}
