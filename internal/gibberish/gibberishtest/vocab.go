// Package gibberishtest provides what tests and benchmarks of gibberish
// detection need: real tokenizer vocabularies to sample "token soup" from,
// and clean natural text read from the documentation Debian installs
// (/usr/share/doc, /usr/share/man, Japanese manual pages and message
// catalogues, Python sources).
//
// # Vocabularies
//
// vocab/*.txt hold 4,096 tokens each, drawn uniformly at random (seeded)
// from the gpt2, cl100k_base and o200k_base vocabularies as the npm package
// js-tiktoken 1.0.21 ships them (dist/ranks/*.js, MIT licence; see
// vocab/LICENSE). One token per line, base64 of its raw
// bytes (a token may be part of a UTF-8 sequence). A uniform sample of a
// vocabulary is still a uniform sampler of it, which is what the poisoning
// recipe draws from; benchmarks load whole vocabularies with LoadVocabFile.
package gibberishtest

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"strings"
)

//go:embed vocab/*.txt
var vocabFS embed.FS

// Vocab is a tokenizer vocabulary (or a uniform sample of one).
type Vocab struct {
	Name   string
	Tokens [][]byte
}

// VocabNames are the embedded vocabularies, in the order Vocabs returns them.
var VocabNames = []string{"gpt2", "cl100k_base", "o200k_base"}

// Vocabs returns the embedded vocabulary samples.
func Vocabs() []Vocab {
	out := make([]Vocab, 0, len(VocabNames))
	for _, n := range VocabNames {
		data, err := vocabFS.ReadFile(path.Join("vocab", n+".txt"))
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		v, err := parseVocab(n, bytes.NewReader(data))
		if err != nil {
			panic(err)
		}
		out = append(out, v)
	}
	return out
}

// LoadVocabFile reads a vocabulary: either one base64 token per line, or
// a js-tiktoken ranks file (dist/ranks/NAME.js, whose "bpe_ranks" string
// lists base64 tokens in rank order).
func LoadVocabFile(name string) (Vocab, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return Vocab{}, err
	}
	base := strings.TrimSuffix(path.Base(name), path.Ext(name))
	if i := bytes.Index(data, []byte(`"bpe_ranks":"`)); i >= 0 {
		rest := data[i+len(`"bpe_ranks":"`):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return Vocab{}, fmt.Errorf("%s: unterminated bpe_ranks", name)
		}
		s := strings.ReplaceAll(string(rest[:j]), `\n`, "\n")
		var b strings.Builder
		for _, line := range strings.Split(s, "\n") {
			f := strings.Fields(line)
			if len(f) > 2 { // "<dummy> <offset> tok tok ..."
				for _, t := range f[2:] {
					b.WriteString(t)
					b.WriteByte('\n')
				}
			}
		}
		data = []byte(b.String())
	}
	return parseVocab(base, bytes.NewReader(data))
}

func parseVocab(name string, r io.Reader) (Vocab, error) {
	v := Vocab{Name: name}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		tok, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return v, fmt.Errorf("vocabulary %s: %q: %w", name, line, err)
		}
		v.Tokens = append(v.Tokens, tok)
	}
	if len(v.Tokens) == 0 {
		return v, fmt.Errorf("vocabulary %s: no tokens", name)
	}
	return v, sc.Err()
}

// Soup returns n tokens drawn uniformly at random from v, decoded and
// concatenated, as the poisoning recipe writes them. The result may hold
// invalid UTF-8 where a token is part of a multi-byte sequence.
func (v Vocab) Soup(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.Write(v.Tokens[r.IntN(len(v.Tokens))])
	}
	return b.String()
}
