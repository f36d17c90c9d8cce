package audit

import (
	"maps"
	"strconv"
	"strings"

	"github.com/llmfence/llmfence/internal/locale"
	"github.com/llmfence/llmfence/internal/service"
)

// The audit's own sentences (notes, the details of the findings it
// raises, where a setting was read) are messages of messages.en.yaml
// with their arguments. Code that finds something says it as a message
// (msg); the records keep the English, written from the English
// message, and beside it the message, so a report says it in the
// reader's language. A message can take another as an argument K
// (internal/locale's convention): K_msg names it and K.NAME are its
// arguments; words.finish writes K, the English, before a record keeps
// the message.

// msg is a message with its arguments given as key, value pairs.
func msg(id string, kv ...string) service.Message {
	m := service.Message{ID: id, Args: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Args[kv[i]] = kv[i+1]
	}
	return m
}

// nest passes m as the argument k of another message: k_msg and k.NAME.
func nest(k string, m service.Message) []string {
	out := []string{k + "_msg", m.ID}
	for _, name := range sortedKeys(m.Args) {
		out = append(out, k+"."+name, m.Args[name])
	}
	return out
}

// words says the audit's messages in English, for the records.
type words struct{ en *locale.Printer }

func newWords() (words, error) {
	c, err := locale.NewCatalogue(Messages())
	if err != nil {
		return words{}, err
	}
	return words{en: c.Printer(locale.English)}, nil
}

// finish returns the English of m and m with every argument K that a
// K_msg names filled with that message's English, at every depth.
func (w words) finish(m service.Message) (string, service.Message) {
	args := maps.Clone(m.Args)
	w.fill(args)
	if len(args) == 0 {
		args = nil
	}
	return w.en.Message(m.ID, args), service.Message{ID: m.ID, Args: args}
}

// english is the English of m.
func (w words) english(m service.Message) string {
	s, _ := w.finish(m)
	return s
}

func (w words) fill(args map[string]string) {
	for k, id := range args {
		base, ok := strings.CutSuffix(k, "_msg")
		if !ok || strings.Contains(base, ".") || id == "" {
			continue
		}
		sub := map[string]string{}
		for name, v := range args {
			if rest, ok := strings.CutPrefix(name, base+"."); ok && rest != "" {
				sub[rest] = v
			}
		}
		w.fill(sub)
		for name, v := range sub {
			args[base+"."+name] = v
		}
		args[base] = w.en.Message(id, sub)
	}
}

// noted appends a note's English and its message.
func (w words) noted(notes *[]string, msgs *[]service.Message, m service.Message) {
	s, fm := w.finish(m)
	*notes = append(*notes, s)
	*msgs = append(*msgs, fm)
}

// sayAll says recorded lines in the reader's language: each line by its
// message when the lines and messages pair up and the reader's language
// has the message, else as recorded.
func sayAll(p *locale.Printer, lines []string, msgs []service.Message) []string {
	if p.Lang() == locale.English || len(msgs) != len(lines) {
		return lines
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = sayOne(p, l, msgs[i])
	}
	return out
}

// sayOne says one recorded text by its message in the reader's language.
func sayOne(p *locale.Printer, english string, m service.Message) string {
	if p.Lang() == locale.English || m.ID == "" || !p.Has(m.ID) {
		return english
	}
	return p.Message(m.ID, m.Args)
}

// reason passes why something could not be read (errText's words) as the
// argument k: a message for the reasons errText names, else the text
// as it is (the system's own words).
func reason(k, text string) []string {
	id := ""
	switch text {
	case "permission denied":
		id = "audit.reason.permission"
	case "does not exist":
		id = "audit.reason.not_exist"
	case "too many levels of symbolic links":
		id = "audit.reason.loop"
	case "is a directory":
		id = "audit.reason.is_dir"
	default:
		if n, ok := strings.CutPrefix(text, "longer than "); ok {
			if n, ok = strings.CutSuffix(n, " bytes; the rest was not read"); ok {
				return nest(k, msg("audit.reason.too_long", "bytes", n))
			}
		}
		return nest(k, msg("audit.literal", "text", text))
	}
	return nest(k, msg(id))
}

// partIDs name the parts of a process the reader reads (Process.Unread).
var partIDs = map[string]string{
	"command line": "audit.part.command_line", "status": "audit.part.status", "executable": "audit.part.executable",
	"working directory": "audit.part.cwd", "environment": "audit.part.environment", "control group": "audit.part.cgroup",
	"net namespace": "audit.part.netns", "mnt namespace": "audit.part.mntns", "root directory": "audit.part.root",
}

// part passes a part of a process as the argument k.
func part(k, name string) []string {
	if id, ok := partIDs[name]; ok {
		return nest(k, msg(id))
	}
	return nest(k, msg("audit.literal", "text", name))
}

// args joins argument lists.
func args(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// list passes the first n of xs, joined by sep, as the argument k, and
// says how many more there are.
func list(k string, xs []string, n int, sep string) []string {
	if len(xs) <= n {
		return []string{k, strings.Join(xs, sep)}
	}
	return nest(k, msg("audit.list.more", "items", strings.Join(xs[:n], sep), "sep", sep, "more", strconv.Itoa(len(xs)-n)))
}

// fix is a fix line the audit writes: its English and its message.
func (a *auditor) fix(m service.Message) fixLine {
	text, fm := a.words.finish(m)
	return fixLine{text: text, msg: fm}
}
