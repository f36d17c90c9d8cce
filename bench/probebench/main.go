// Command probebench measures a standard `llmfence probe` run: all four
// suites with the default packs, against a lab probe persona that decodes
// at 20 ms per token with 4 parallel slots (as an Ollama with
// OLLAMA_NUM_PARALLEL=4 would).
//
// The persona runs in a child process (this binary, re-executed), so the
// CPU the bench process uses is the probe's alone. It reports the wall
// time (target: under 2 minutes), the slot utilisation (the persona's busy
// slot time over slots × wall time; target ≥ 90 %), the probe's CPU per
// request (target: under 1 ms), the number of requests and tokens, and
// what a serial run of the same requests takes: estimated as the sum of
// the requests' service times, or measured with -serial.
//
//	flock /tmp/llmfence-bench.lock go run ./bench/probebench [-delay 20ms] [-slots 4] [-persona aligned] [-serial]
//
// This is a benchmark, not a test: figures depend on the machine.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/llmfence/llmfence/internal/lab"
	"github.com/llmfence/llmfence/internal/probe"
)

func main() {
	var (
		delay   = flag.Duration("delay", 20*time.Millisecond, "persona decode time per token")
		slots   = flag.Int("slots", 4, "persona parallel slots")
		persona = flag.String("persona", lab.ProbeAligned, "lab probe persona")
		serial  = flag.Bool("serial", false, "also run the same plan with one request in flight and report its wall time")
		serve   = flag.Bool("serve-persona", false, "internal: run the persona (child process)")
		prof    = flag.String("cpuprofile", "", "write the probe's CPU profile to `FILE`")
	)
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *serve {
		if err := servePersona(*persona, *delay, *slots); err != nil {
			log.Error("persona", "err", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*persona, *delay, *slots, *serial); err != nil {
		log.Error("probebench failed", "err", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// servePersona runs the persona until stdin closes, printing its URL.
func servePersona(name string, delay time.Duration, slots int) error {
	p, err := lab.ProbePreset(name)
	if err != nil {
		return err
	}
	p.TokenDelay, p.Slots = delay, slots
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := lab.StartProbe(ctx, netip.MustParseAddrPort("127.0.0.1:0"), p)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println(s.URL)
	<-ctx.Done()
	return nil
}

type measured struct {
	wall, cpu time.Duration
	requests  int
	tokens    int64
	stats     lab.ProbeStats
	verdicts  []string
	complete  bool
}

func run(persona string, delay time.Duration, slots int, serial bool) error {
	fmt.Printf("probebench: persona %s, %v per token, %d slots; GOMAXPROCS %d, %d CPUs\n", persona, delay, slots, runtime.GOMAXPROCS(0), runtime.NumCPU())
	par, err := once(persona, delay, slots, 0)
	if err != nil {
		return err
	}
	report("adaptive", par, slots)
	estSerial := par.stats.Busy
	fmt.Printf("serial estimate (sum of the requests' service times): %s — %.1f× the adaptive run's wall time\n",
		estSerial.Round(time.Second), estSerial.Seconds()/par.wall.Seconds())
	if serial {
		ser, err := once(persona, delay, slots, 1)
		if err != nil {
			return err
		}
		report("serial (--concurrency 1)", ser, slots)
		fmt.Printf("measured serial/adaptive wall time: %.2f×\n", ser.wall.Seconds()/par.wall.Seconds())
	}
	fmt.Printf("targets: wall < 2m (%.2f of it), utilisation ≥ 90%%, probe CPU < 1 ms per request (%.2f of it)\n",
		par.wall.Seconds()/120, float64(par.cpu.Microseconds())/float64(par.requests)/1000)
	return nil
}

func report(name string, m measured, slots int) {
	util := m.stats.Busy.Seconds() / (float64(slots) * m.wall.Seconds())
	fmt.Printf("%s: %d requests, %d tokens in %s (complete %v); slot utilisation %.1f%%; max in flight %d, max queued %d; probe CPU %s total, %.3f ms per request; verdicts %s\n",
		name, m.requests, m.tokens, m.wall.Round(10*time.Millisecond), m.complete, 100*util, m.stats.MaxInFlight, m.stats.MaxQueued,
		m.cpu.Round(time.Millisecond), float64(m.cpu.Microseconds())/float64(m.requests)/1000, strings.Join(m.verdicts, " "))
}

// once starts a fresh persona process and runs the standard probe
// against it.
func once(persona string, delay time.Duration, slots, concurrency int) (measured, error) {
	self, err := os.Executable()
	if err != nil {
		return measured{}, err
	}
	cmd := exec.Command(self, "-serve-persona", "-persona", persona, "-delay", delay.String(), "-slots", fmt.Sprint(slots))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return measured{}, err
	}
	if err := cmd.Start(); err != nil {
		return measured{}, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	var url string
	if _, err := fmt.Fscanln(out, &url); err != nil {
		return measured{}, fmt.Errorf("persona did not start: %w", err)
	}
	p, _ := lab.ProbePreset(persona)
	dir, err := os.MkdirTemp("", "probebench-")
	if err != nil {
		return measured{}, err
	}
	defer os.RemoveAll(dir)
	cpu0 := cpuTime()
	start := time.Now()
	res, err := probe.Run(context.Background(), probe.Options{Config: probe.Config{Target: url, Model: p.Model,
		Seed: probe.DefaultSeed, RareTokens: probe.DefaultRareTokens}, Concurrency: concurrency, Journal: dir + "/journal.jsonl"})
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	if err != nil {
		return measured{}, err
	}
	m := measured{wall: wall, cpu: cpu, requests: res.Planned, complete: res.Complete}
	for _, a := range res.Attempts {
		m.tokens += int64(a.Tokens)
	}
	for _, s := range res.Summaries {
		m.verdicts = append(m.verdicts, s.Suite+"="+s.Verdict)
	}
	resp, err := http.Get(url + lab.ProbeStatsPath)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&m.stats)
	return m, err
}

// cpuTime is this process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
