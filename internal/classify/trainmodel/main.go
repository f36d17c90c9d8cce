// Command trainmodel trains the classifier's statistical layer on the
// labelled sets and writes internal/classify/model.tsv. It runs from
// internal/classify (go generate ./internal/classify) and prints the
// cross-validated figures that chose the combination thresholds.
//
// The training sets are listed here, by name; a blind set still used for
// an estimate is never one of them (see docs/classifier.md).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llmfence/llmfence/internal/classify"
)

// trainingSets are the labelled sets the model learns from.
var trainingSets = []string{"dev", "holdout", "blind1", "blind2", "blind3", "blind4", "extra"}

func main() {
	dir := flag.String("testdata", "testdata", "directory of labelled_<set>.jsonl files")
	out := flag.String("o", "model.tsv", "model file to write")
	report := flag.String("report", "", "also write the cross-validation report to this file")
	thSets := flag.String("threshold-sets", "blind3,blind4,extra", "comma-separated sets whose out-of-fold scores choose the thresholds (empty: all)")
	maxFeatures := flag.Int("max-features", classify.DefaultTrainOptions.MaxFeatures, "features kept in the model")
	flag.Parse()
	opt := classify.DefaultTrainOptions
	opt.MaxFeatures = *maxFeatures
	if *thSets != "" {
		opt.ThresholdSets = strings.Split(*thSets, ",")
	}
	var sets []classify.Set
	for _, name := range trainingSets {
		ex, err := load(filepath.Join(*dir, "labelled_"+name+".jsonl"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "trainmodel:", err)
			os.Exit(1)
		}
		sets = append(sets, classify.Set{Name: name, Examples: ex})
	}
	g, err := classify.GenerateModel(sets, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "trainmodel:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, g.TSV, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "trainmodel:", err)
		os.Exit(1)
	}
	if *report != "" {
		if err := os.WriteFile(*report, []byte(g.Report), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "trainmodel:", err)
			os.Exit(1)
		}
	}
	fmt.Print(g.Report)
}

func load(path string) ([]classify.Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []classify.Example
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e classify.Example
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}
