package cli

import (
	"fmt"
	"slices"
	"strings"
)

// Enum is a flag value (it implements pflag.Value) that takes one of a
// fixed set of words and refuses anything else, listing the valid ones.
type Enum struct {
	p      *string
	values []string
}

// NewEnum sets *p to def and returns the flag value that accepts values
// (compared without regard to case, stored as listed).
func NewEnum(p *string, def string, values ...string) *Enum {
	*p = def
	return &Enum{p: p, values: values}
}

// Set accepts one of the values.
func (e *Enum) Set(s string) error {
	for _, v := range e.values {
		if strings.EqualFold(strings.TrimSpace(s), v) {
			*e.p = v
			return nil
		}
	}
	return fmt.Errorf("want %s", orList(e.values))
}

// String is the current value.
func (e *Enum) String() string {
	if e == nil || e.p == nil {
		return ""
	}
	return *e.p
}

// Type names the value in --help: the choices.
func (e *Enum) Type() string { return strings.Join(e.values, "|") }

// Values are the accepted words.
func (e *Enum) Values() []string { return slices.Clone(e.values) }

// orList is "a, b or c".
func orList(vs []string) string {
	switch len(vs) {
	case 0:
		return "nothing"
	case 1:
		return vs[0]
	}
	return strings.Join(vs[:len(vs)-1], ", ") + " or " + vs[len(vs)-1]
}
