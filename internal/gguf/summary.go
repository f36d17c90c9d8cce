package gguf

import (
	"fmt"
	"math/bits"
	"strings"
)

// summarise fills f.Summary from the metadata and tensors, checks the
// lineage and analyses every chat template.
func (s *scanner) summarise() error {
	f := s.f
	sum := &f.Summary
	str := func(key string) string {
		if kv, ok := f.Lookup(key); ok {
			v, _ := kv.Value.(string)
			return v
		}
		return ""
	}
	sum.Architecture = str("general.architecture")
	sum.Name = str("general.name")
	sum.Basename = str("general.basename")
	sum.Finetune = str("general.finetune")
	sum.SizeLabel = str("general.size_label")
	sum.License = str("general.license")
	if sum.License == "" {
		sum.License = str("general.license.name")
	}
	sum.ChatTemplate = str("tokenizer.chat_template")
	sum.BaseModel = baseModel(str)
	if sum.Architecture != "" {
		if kv, ok := f.Lookup(sum.Architecture + ".context_length"); ok {
			switch v := kv.Value.(type) {
			case uint64:
				sum.ContextLength = v
			case int64:
				if v > 0 {
					sum.ContextLength = uint64(v)
				}
			}
		}
	}

	var params uint64
	saturated := false
	bytesByType := map[string]uint64{}
	for _, t := range f.Tensors {
		if t.TypeName == "" {
			continue
		}
		if sum.TensorTypes == nil {
			sum.TensorTypes = map[string]uint64{}
		}
		sum.TensorTypes[t.TypeName]++
		var c uint64
		bytesByType[t.TypeName], c = bits.Add64(bytesByType[t.TypeName], t.Size, 0)
		if c != 0 {
			bytesByType[t.TypeName] = ^uint64(0)
		}
		params, c = bits.Add64(params, t.Elements, 0)
		if c != 0 {
			saturated = true
		}
	}
	if !saturated {
		sum.Parameters = params
	}
	sum.Quantization = s.quantization(bytesByType)

	if err := s.lineage(); err != nil {
		return err
	}
	for _, kv := range f.KV {
		if kv.Key != "tokenizer.chat_template" && !strings.HasPrefix(kv.Key, "tokenizer.chat_template.") {
			continue
		}
		tmpl, ok := kv.Value.(string)
		if !ok {
			continue
		}
		for _, fd := range s.d.templateFindings(tmpl, sum.Architecture) {
			if kv.Key != "tokenizer.chat_template" {
				fd.Detail = kv.Key + ": " + fd.Detail
			}
			fd.Offset = kv.Offset
			s.perID[fd.ID]++
			if s.perID[fd.ID] <= maxPerID {
				s.found = append(s.found, fd)
			}
		}
	}
	return nil
}

// baseModel joins general.base_model.0.{organization,name} (or its
// repo_url) into one string.
func baseModel(str func(string) string) string {
	name := str("general.base_model.0.name")
	org := str("general.base_model.0.organization")
	switch {
	case name != "" && org != "":
		return org + "/" + name
	case name != "":
		return name
	}
	return str("general.base_model.0.repo_url")
}

// quantization names the file type when general.file_type is set, else the
// tensor type holding the most bytes.
func (s *scanner) quantization(bytesByType map[string]uint64) string {
	if kv, ok := s.f.Lookup("general.file_type"); ok {
		if v, ok := kv.Value.(uint64); ok && v <= 0xffffffff {
			if name, ok := s.d.tab.FileTypes[uint32(v)]; ok {
				return name
			}
			return fmt.Sprintf("file_type %d", v)
		}
	}
	best, bestBytes := "", uint64(0)
	for name, b := range bytesByType {
		if b > bestBytes || b == bestBytes && name < best {
			best, bestBytes = name, b
		}
	}
	return best
}

// lineage flags names that mark removed guardrails.
func (s *scanner) lineage() error {
	c := s.opts.Classifier
	if c == nil {
		var err error
		if c, err = defaultClassifier(); err != nil {
			return fmt.Errorf("loading the lineage classifier: %w", err)
		}
	}
	sum := &s.f.Summary
	parent := sum.BaseModel
	if parent == "" {
		parent = sum.Basename
	}
	candidates := []struct{ name, parent string }{
		{sum.Name, parent},
		{strings.TrimSpace(sum.Basename + " " + sum.Finetune), ""},
	}
	for _, cand := range candidates {
		if cand.name == "" && cand.parent == "" {
			continue
		}
		if removed, why := c.GuardrailsRemoved(cand.name, cand.parent, sum.Architecture, ""); removed {
			sum.GuardrailsRemoved = why
			s.add("GGUF-040", why, -1)
			return nil
		}
	}
	return nil
}
