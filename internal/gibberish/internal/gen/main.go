// Command gen builds the embedded reference model of package gibberish
// (model.bin.gz) from text Debian installs: the documentation under
// /usr/share/doc, English and Japanese manual pages, Japanese message
// catalogues and Python sources (every file installed: see
// gibberishtest.Corpus.System). The files gibberishtest.HeldOut is false
// for (three in four, by a hash of the path) build the bigram and word
// tables; the held-out quarter, with tables and lists made from their
// words, and token soup sampled from the embedded tokenizer vocabularies,
// fit the weights and the threshold. The tests measure on held-out files
// of a fixed set of packages, so they never score text the tables were
// built from.
//
//	go run ./internal/gibberish/internal/gen -o internal/gibberish/model.bin.gz
//
// The tables depend on the packages installed; the committed model was
// built on the project's reference machine (Debian 12) and the command
// prints what it used.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"sort"

	"github.com/llmfence/llmfence/internal/gibberish"
	gt "github.com/llmfence/llmfence/internal/gibberish/gibberishtest"
)

func main() {
	out := flag.String("o", "model.bin.gz", "output file")
	fitBytes := flag.Int("fit-bytes", 4<<20, "held-out text per kind used to fit")
	flag.Parse()
	c := gt.Corpus{System: true}
	b := gibberish.NewBuilder(gibberish.BuilderOptions{MaxPairs: 4 << 20, MaxWords: 4 << 20})
	natural := map[string][]string{}
	var allDocs []gt.Doc
	for _, k := range []gt.Kind{gt.Docs, gt.Man, gt.Japanese, gt.Code} {
		docs, err := c.Read(k, 0)
		if err != nil {
			log.Fatalf("%s: %v", k, err)
		}
		held := 0
		var built int64
		for _, d := range docs {
			if gt.HeldOut(d.Path) {
				if held < *fitBytes {
					natural[string(k)] = append(natural[string(k)], d.Text)
					held += len(d.Text)
				}
				continue
			}
			b.Add(d.Text)
			built += int64(len(d.Text))
		}
		// Japanese is scarce: add it twice so its bigrams clear MinCount as
		// often as English ones do.
		if k == gt.Japanese {
			for _, d := range docs {
				if !gt.HeldOut(d.Path) {
					b.Add(d.Text)
				}
			}
		}
		allDocs = append(allDocs, docs...)
		log.Printf("%s: %d documents, %d bytes built, %d held out", k, len(docs), built, held)
	}
	r := rand.New(rand.NewPCG(7, 11))
	words := gt.Words(allDocs[:min(len(allDocs), 3000)])
	for range 1500 {
		natural["tables"] = append(natural["tables"], gt.Table(r, words, 10+r.IntN(30)))
		natural["lists"] = append(natural["lists"], gt.List(r, words, 5+r.IntN(30)))
	}
	soup := map[string][]string{}
	for _, v := range gt.Vocabs() {
		for range 1500 {
			soup[v.Name] = append(soup[v.Name], v.Soup(r, 400+r.IntN(500)))
		}
	}
	base := b.Model(nil)
	m, rep, err := base.Fit(natural, soup, gibberish.FitOptions{})
	if err != nil {
		log.Fatal(err)
	}
	kinds := make([]string, 0, len(rep.Windows))
	for k := range rep.Windows {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		log.Printf("fit %-12s windows %6d flagged %.4f", k, rep.Windows[k], rep.Flagged[k])
	}
	log.Printf("weights %v bias %.3f mid %.3f scale %.3f", rep.Weights, rep.Bias, rep.Mid, rep.Scale)
	data, err := m.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(data)
	zw.Close()
	if err := os.WriteFile(*out, gz.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s: %d bytes (%d uncompressed)\n", *out, gz.Len(), len(data))
}
