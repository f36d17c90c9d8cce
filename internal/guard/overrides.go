package guard

import (
	"fmt"
	"slices"
	"strings"
)

// Overrides are the settings given on the command line; they win over the
// --config file. Each setting's flag is the FlagValue Overrides.Value
// returns; Apply lays what was given over a configuration, so the same
// flags apply again to every reloaded file.
type Overrides struct {
	args map[string][]string // by setting key, the values in the order given
}

// NewOverrides returns Overrides with nothing given.
func NewOverrides() *Overrides { return &Overrides{args: map[string][]string{}} }

// FlagValue is one setting's command-line flag: a flag.Value and
// pflag.Value that records into Overrides what the command line gives. A
// switch's also has IsBoolFlag, so it takes no argument.
type FlagValue interface {
	String() string
	Set(string) error
	Type() string
}

// Value is the flag value of setting s, recording into o.
func (o *Overrides) Value(s Setting) FlagValue {
	v := &flagValue{o: o, s: s}
	if s.Kind() == KindBool {
		return switchValue{v}
	}
	return v
}

// Given reports whether the command line gave setting key.
func (o *Overrides) Given(key string) bool { return len(o.args[key]) > 0 }

// Apply replaces, in c, every setting the command line gave, in the
// table's order. A nil o gives nothing.
func (o *Overrides) Apply(c *Config) error {
	if o == nil {
		return nil
	}
	for _, s := range Settings() {
		if err := s.Set(c, o.args[s.Key]...); err != nil {
			return err
		}
	}
	return nil
}

// Lookup finds the setting with YAML key key.
func Lookup(key string) (Setting, bool) {
	t := Settings()
	i := slices.IndexFunc(t, func(s Setting) bool { return s.Key == key })
	if i < 0 {
		return Setting{}, false
	}
	return t[i], true
}

type flagValue struct {
	o *Overrides
	s Setting
}

// String is the value given, or the default (what --help shows).
func (v *flagValue) String() string {
	if v == nil || v.o == nil {
		return ""
	}
	if args := v.o.args[v.s.Key]; len(args) > 0 {
		if v.s.Kind() == KindList {
			return strings.Join(args, ",")
		}
		return args[len(args)-1]
	}
	return v.s.Default()
}

// Set records one value given for the flag, after checking that it
// reads as the setting's type. A list flag collects every value given.
func (v *flagValue) Set(x string) error {
	args := append(slices.Clone(v.o.args[v.s.Key]), x)
	scratch := DefaultConfig()
	if err := v.s.v.set(&scratch, args); err != nil {
		return err
	}
	v.o.args[v.s.Key] = args
	return nil
}

// Type names the value in help: the setting's Arg, "bool" for a switch.
func (v *flagValue) Type() string {
	if v.s.Kind() == KindBool {
		return "bool"
	}
	return v.s.Arg
}

// switchValue is a switch's flag value.
type switchValue struct{ *flagValue }

// IsBoolFlag makes the flag take no value (--capture).
func (switchValue) IsBoolFlag() bool { return true }

// abuseBlockable are the abuse signals a request can be refused for
// (--abuse-block): each names the setting abuse.<signal>.action.
var abuseBlockable = []string{"rate_jump", "new_network", "prompt_abuse", "bulk_spam"}

// BlockableSignals are the abuse signals BlockSignal takes.
func BlockableSignals() []string { return slices.Clone(abuseBlockable) }

// BlockSignal gives "block" to abuse.<signal>.action, as the command
// line's shorthand --abuse-block does.
func (o *Overrides) BlockSignal(signal string) error {
	signal = strings.TrimSpace(signal)
	if !slices.Contains(abuseBlockable, signal) {
		return fmt.Errorf("%q: want %s", signal, strings.Join(abuseBlockable, ", "))
	}
	s, _ := Lookup("abuse." + signal + ".action")
	return o.Value(s).Set("block")
}
