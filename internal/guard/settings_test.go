package guard

import (
	"encoding"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// yamlLeaves lists the YAML keys of every leaf field of Config, dotted:
// nested structs are walked, and a field whose type reads itself from
// text (abuse.Action, spool.Fsync) or is a duration is a leaf.
func yamlLeaves(typ reflect.Type, prefix string) []string {
	var out []string
	textType := reflect.TypeFor[encoding.TextUnmarshaler]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textType) {
			out = append(out, yamlLeaves(f.Type, prefix+name+".")...)
			continue
		}
		out = append(out, prefix+name)
	}
	return out
}

var flagName = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// TestSettingsTableIsComplete: every setting has a YAML key that is a
// field of Config, a flag, help, a placeholder for its value and a reload
// class; every YAML field of Config is in the table exactly once; no two
// settings share a flag.
func TestSettingsTableIsComplete(t *testing.T) {
	leaves := yamlLeaves(reflect.TypeFor[Config](), "")
	keys := map[string]bool{}
	flags := map[string]string{}
	for _, s := range Settings() {
		if keys[s.Key] {
			t.Errorf("%s: in the table twice", s.Key)
		}
		keys[s.Key] = true
		if !slices.Contains(leaves, s.Key) {
			t.Errorf("%s: not a YAML field of Config", s.Key)
		}
		if !flagName.MatchString(s.Flag) || s.Flag == "config" {
			t.Errorf("%s: flag %q", s.Key, s.Flag)
		}
		if other, dup := flags[s.Flag]; dup {
			t.Errorf("%s and %s share the flag --%s", other, s.Key, s.Flag)
		}
		flags[s.Flag] = s.Key
		if strings.TrimSpace(s.Help) == "" || strings.HasSuffix(s.Help, ".") {
			t.Errorf("%s: help %q (one line, no final full stop)", s.Key, s.Help)
		}
		if (s.Arg == "") != (s.Kind() == KindBool) {
			t.Errorf("%s: a %s with Arg %q", s.Key, s.Kind(), s.Arg)
		}
		if s.Reload != Reloads && s.Reload != NeedsRestart && s.Reload != ReloadsFile {
			t.Errorf("%s: no reload class", s.Key)
		}
		if s.Reload == ReloadsFile && s.Kind() != KindString {
			t.Errorf("%s: ReloadsFile is for file paths", s.Key)
		}
		if s.Kind() == KindChoice && len(s.Choices()) < 2 {
			t.Errorf("%s: a choice of %q", s.Key, s.Choices())
		}
	}
	for _, l := range leaves {
		if !keys[l] {
			t.Errorf("YAML field %s has no setting in the table", l)
		}
	}
}

// samples returns two values of s, as the flag would take them, that
// differ from each other and (but for a switch, which has two values)
// from the default.
func samples(t *testing.T, s Setting) (a, b []string) {
	t.Helper()
	def := s.Default()
	switch s.Kind() {
	case KindString:
		return []string{def + "a"}, []string{def + "b"}
	case KindList:
		return []string{"192.0.2.1"}, []string{"198.51.100.0/24", "203.0.113.7"}
	case KindInt:
		n, err := strconv.ParseInt(def, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return []string{strconv.FormatInt(n+1, 10)}, []string{strconv.FormatInt(n+2, 10)}
	case KindFloat:
		f, err := strconv.ParseFloat(def, 64)
		if err != nil {
			t.Fatal(err)
		}
		return []string{strconv.FormatFloat(f+1, 'g', -1, 64)}, []string{strconv.FormatFloat(f+2.5, 'g', -1, 64)}
	case KindBool:
		d, _ := strconv.ParseBool(def)
		return []string{strconv.FormatBool(!d)}, []string{def}
	case KindDuration:
		d, err := ParseDuration(def)
		if def == "0" {
			d, err = 0, nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return []string{FormatDuration(d + time.Second)}, []string{FormatDuration(d + 90*time.Minute)}
	case KindChoice:
		var other []string
		for _, c := range s.Choices() {
			if c != def {
				other = append(other, c)
			}
		}
		return other[:1], other[1:2]
	}
	t.Fatalf("%s: kind %q", s.Key, s.Kind())
	return nil, nil
}

// yamlFor writes the YAML that sets s to vals: a key path of nested maps.
func yamlFor(s Setting, vals []string) string {
	var v string
	switch s.Kind() {
	case KindString:
		v = strconv.Quote(vals[0])
	case KindList:
		q := make([]string, len(vals))
		for i, x := range vals {
			q[i] = strconv.Quote(x)
		}
		v = "[" + strings.Join(q, ", ") + "]"
	default:
		v = vals[0]
	}
	parts := strings.Split(s.Key, ".")
	var b strings.Builder
	for i, p := range parts {
		b.WriteString(strings.Repeat("  ", i) + p + ":")
		if i < len(parts)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString(" " + v + "\n")
	return b.String()
}

// TestFlagsOverrideTheFile, for every setting: its YAML key sets it, its
// flag sets it, and the flag wins over the file without touching any other
// setting.
func TestFlagsOverrideTheFile(t *testing.T) {
	table := Settings()
	for _, s := range table {
		t.Run(s.Key, func(t *testing.T) {
			a, b := samples(t, s)
			want := func(vals []string) string { return strings.Join(vals, ",") }
			fromFile, err := decodeConfig([]byte(yamlFor(s, a)), DefaultConfig())
			if err != nil {
				t.Fatalf("YAML %q: %v", yamlFor(s, a), err)
			}
			if got := s.Text(&fromFile); got != want(a) {
				t.Fatalf("YAML %q read as %q, want %q", yamlFor(s, a), got, want(a))
			}
			ov := NewOverrides()
			fv := ov.Value(s)
			for _, x := range b {
				if err := fv.Set(x); err != nil {
					t.Fatalf("--%s %s: %v", s.Flag, x, err)
				}
			}
			both := fromFile
			if err := ov.Apply(&both); err != nil {
				t.Fatal(err)
			}
			if got := s.Text(&both); got != want(b) {
				t.Errorf("file %s, flag %s: got %s, want the flag's", want(a), want(b), got)
			}
			flagOnly := DefaultConfig()
			if err := ov.Apply(&flagOnly); err != nil {
				t.Fatal(err)
			}
			if got := s.Text(&flagOnly); got != want(b) {
				t.Errorf("flag %s alone: got %s", want(b), got)
			}
			if err := NewOverrides().Apply(&fromFile); err != nil || s.Text(&fromFile) != want(a) {
				t.Errorf("no flag: got %s (%v), want the file's %s", s.Text(&fromFile), err, want(a))
			}
			def := DefaultConfig()
			for _, o := range table {
				if o.Key != s.Key && o.Text(&both) != o.Text(&def) {
					t.Errorf("setting %s also changed %s", s.Key, o.Key)
				}
			}
		})
	}
}

// TestFlagValuesRefuseBadInput: a flag value that does not read as its
// setting's type is refused when the flag is parsed, naming what it wants.
func TestFlagValuesRefuseBadInput(t *testing.T) {
	for _, s := range Settings() {
		var bad, want string
		switch s.Kind() {
		case KindInt:
			bad, want = "12x", "whole number"
		case KindFloat:
			bad, want = "ten", "not a number"
		case KindBool:
			bad, want = "perhaps", "true or false"
		case KindDuration:
			bad, want = "30", "not a duration"
		case KindChoice:
			bad, want = "sometimes", "want one of"
		default:
			continue
		}
		err := NewOverrides().Value(s).Set(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--%s %s: error %v, want one saying %q", s.Flag, bad, err, want)
		}
	}
	if err := NewOverrides().BlockSignal("output_watch"); err == nil {
		t.Error("--abuse-block output_watch accepted")
	}
	ov := NewOverrides()
	if err := ov.BlockSignal("bulk_spam"); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	if err := ov.Apply(&c); err != nil || c.Abuse.BulkSpam.Action.String() != "block" {
		t.Errorf("--abuse-block bulk_spam: %v, action %s", err, c.Abuse.BulkSpam.Action)
	}
}

// TestReloadFollowsTheTable: for every setting, a reload that changes it
// applies it (Reloads, ReloadsFile) or keeps the running value and names
// it (NeedsRestart; ReloadsFile turned on or off).
func TestReloadFollowsTheTable(t *testing.T) {
	for _, s := range Settings() {
		t.Run(s.Key, func(t *testing.T) {
			a, b := samples(t, s)
			running, next := DefaultConfig(), DefaultConfig()
			if err := s.Set(&running, a...); err != nil {
				t.Fatal(err)
			}
			if err := s.Set(&next, b...); err != nil {
				t.Fatal(err)
			}
			restart, kept := restartOnlyChanges(running, next), keepRestartOnly(running, next)
			changed := changedSettings(running, kept)
			switch s.Reload {
			case Reloads, ReloadsFile:
				if restart != nil || !slices.Equal(changed, []string{s.Key}) || s.Text(&kept) != s.Text(&next) {
					t.Errorf("restart %q, changed %q, value %s after reload", restart, changed, s.Text(&kept))
				}
			case NeedsRestart:
				if !slices.Equal(restart, []string{s.Key}) || changed != nil || s.Text(&kept) != s.Text(&running) {
					t.Errorf("restart %q, changed %q, value %s after reload", restart, changed, s.Text(&kept))
				}
			}
			if s.Reload == ReloadsFile {
				off := DefaultConfig()
				if got := restartOnlyChanges(off, next); !slices.Equal(got, []string{s.Key}) {
					t.Errorf("turning it on: restart %q", got)
				}
				if got := keepRestartOnly(next, off); s.Text(&got) != s.Text(&next) {
					t.Errorf("turning it off was applied")
				}
			}
		})
	}
}

// TestSettingsDocUpToDate: the settings reference in docs/guard.md is
// what the table generates (go generate ./internal/guard rewrites it).
func TestSettingsDocUpToDate(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "guard.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := replaceSettingsReference(doc)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(got) != string(doc) {
		t.Errorf("the settings reference in %s is stale: run go generate ./internal/guard", path)
	}
	for _, s := range Settings() {
		if !strings.Contains(string(doc), "| `"+s.Key+"` | `--"+s.Flag) {
			t.Errorf("%s lacks the row of %s", path, s.Key)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0", time.Second: "1s", 2 * time.Minute: "2m", 720 * time.Hour: "720h",
		90 * time.Minute: "1h30m", time.Hour + time.Second: "1h0m1s", 1500 * time.Millisecond: "1.5s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(want); d != 0 && (err != nil || back != d) {
			t.Errorf("%q reads back as %v, %v", want, back, err)
		}
	}
}

// TestLoadConfigValidatesFileAndFlagsTogether: the file and the flags are
// validated as one configuration, so a flag may complete the file; and a
// file that is wrong whatever the flags say is refused.
func TestLoadConfigValidatesFileAndFlagsTogether(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "g.yaml")
	if err := os.WriteFile(file, []byte("oidc: {issuer: https://login.example.com/realms/ai}\nmax_body_bytes: 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(file, nil); err == nil || !strings.Contains(err.Error(), "audience is required") {
		t.Errorf("file alone: %v, want the missing audience", err)
	}
	ov := NewOverrides()
	aud, _ := Lookup("oidc.audience")
	body, _ := Lookup("max_body_bytes")
	if err := ov.Value(aud).Set("llmfence"); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(file, ov)
	if err != nil || cfg.OIDC.Audience != "llmfence" || cfg.MaxBodyBytes != 100 {
		t.Fatalf("file and --oidc-audience: %v, %+v", err, cfg.OIDC)
	}
	if err := ov.Value(body).Set("-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(file, ov); err == nil || !strings.Contains(err.Error(), "max_body_bytes") {
		t.Errorf("--max-body -1: %v", err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml"), ov); err == nil || !strings.Contains(err.Error(), "reading guard config") {
		t.Errorf("missing file: %v", err)
	}
}
