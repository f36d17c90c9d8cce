package datascan

import (
	"maps"
	"slices"
	"sync"
)

// Reading and detecting are separate stages: a reader parses a file and
// hands its records on in batches; any of the detector workers takes a
// batch, so one large file uses every core. A file's findings are
// reported in the order of its records (a batch that finishes early waits
// for the ones before it), and its FileInfo once its last batch is done.
// At most Options.Workers*2 batches wait at once, so memory stays bounded
// by the batch size, not by the file.

const (
	batchBytes   = 256 << 10 // text in a batch before it is handed on
	batchRecords = 1024
)

// batch is records of one file on their way to the detectors, and what
// the detectors found in them.
type batch struct {
	fs    *fileScan
	seq   int
	recs  []record
	parts []bool // recs[i] is a part of a larger record, not its last
	bytes int

	findings []Finding
	kinds    map[string]int // findings by kind
	cats     map[string]int // pii and secret matches by pattern
}

func (b *batch) countFinding(kind string) {
	if b.kinds == nil {
		b.kinds = map[string]int{}
	}
	b.kinds[kind]++
}

// submit hands a record (or, with part, a part of one larger than
// MaxRecordBytes) to the detectors. The record's fields are copied.
func (fs *fileScan) submit(rec *record, part bool) {
	if !part {
		fs.info.Records++
		fs.run.records.Add(1)
		addValue(&fs.info.Licenses, rec.meta["license"])
		addValue(&fs.info.Sources, rec.meta["source"])
	}
	b := fs.cur
	if b == nil {
		b = &batch{fs: fs, seq: fs.nextSeq}
		fs.nextSeq++
		fs.cur = b
	}
	c := record{index: rec.index, fields: slices.Clone(rec.fields)}
	b.recs = append(b.recs, c)
	b.parts = append(b.parts, part)
	for i := range rec.fields {
		b.bytes += len(rec.fields[i].text)
	}
	if b.bytes >= batchBytes || len(b.recs) >= batchRecords {
		fs.flush()
	}
}

// flush hands the current batch on.
func (fs *fileScan) flush() {
	b := fs.cur
	if b == nil {
		return
	}
	fs.cur = nil
	fs.pending.Add(1)
	select {
	case fs.run.jobs <- b:
	case <-fs.ctx.Done():
		fs.pending.Done()
	}
}

// wait hands on the last batch and waits until every batch of the file
// is done; afterwards fs.info is complete.
func (fs *fileScan) wait() {
	fs.flush()
	fs.pending.Wait()
}

// commit reports a batch's findings, and those of the batches after it
// that finished early, in order.
func (fs *fileScan) commit(b *batch) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.waiting == nil {
		fs.waiting = map[int]*batch{}
	}
	fs.waiting[b.seq] = b
	for {
		nb := fs.waiting[fs.committed]
		if nb == nil {
			return
		}
		delete(fs.waiting, fs.committed)
		fs.committed++
		if len(nb.kinds) > 0 {
			if fs.info.Findings == nil {
				fs.info.Findings = map[string]int{}
			}
			for k, n := range nb.kinds {
				fs.info.Findings[k] += n
			}
		}
		if len(nb.cats) > 0 {
			if fs.info.Categories == nil {
				fs.info.Categories = map[string]int{}
			}
			for _, k := range slices.Sorted(maps.Keys(nb.cats)) {
				fs.info.Categories[k] += nb.cats[k]
			}
		}
		fs.run.emitAll(nb.findings)
	}
}

// startWorkers starts n detector workers on r.jobs; the returned
// function waits for them (after r.jobs is closed) and keeps their
// corpus-model builders.
func (r *run) startWorkers(n int) func() {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := r.newWorker()
			for b := range r.jobs {
				w.processBatch(b)
				b.fs.commit(b)
				b.fs.pending.Done()
			}
			r.bmu.Lock()
			r.builders = append(r.builders, w.builder)
			r.bmu.Unlock()
		}()
	}
	return wg.Wait
}

// processBatch runs the per-record detectors on a batch.
func (w *worker) processBatch(b *batch) {
	for i := range b.recs {
		if b.fs.ctx.Err() != nil {
			return
		}
		w.process(b, &b.recs[i], b.parts[i])
	}
	b.recs = nil // the texts are not needed any more
}
