// Command connectsweep measures the scan loop's TCP connect sweep over
// closed loopback ports at fixed connect concurrencies and with the adaptive
// limit, beside nmap -sT on the same address:port set in the same run, and
// the adaptive sweep once more through net.Dialer instead of the direct
// connect(2) path. It is the measurement behind internal/scan/limit.go and
// internal/scan/connect_linux.go.
//
//	go run ./bench/connectsweep
//	go run ./bench/connectsweep -prefix 127.201.0.0/16 -ports 1-4 -conc 16,64,256,1024
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/llmfence/llmfence/internal/scan"
	"github.com/llmfence/llmfence/internal/service"
	"github.com/llmfence/llmfence/internal/targets"
)

// closer closes any connection it is handed; nothing listens on the swept
// ports, so it is never called in practice.
type closer struct{}

func (closer) Probe(ctx context.Context, addr netip.AddrPort, host string, tls bool, c net.Conn) (*service.Service, error) {
	if c != nil {
		c.Close()
	}
	return nil, nil
}

type walker struct{ s *targets.Set }

func (w walker) Count() uint64 { return w.s.Count() }
func (w walker) Walk(ctx context.Context, fn func(scan.Target) error) error {
	return w.s.Walk(ctx, func(t targets.Target) error {
		return fn(scan.Target{Addr: netip.AddrPortFrom(t.Addr, t.Port)})
	})
}

func main() {
	prefix := flag.String("prefix", "127.201.0.0/16", "loopback prefix with nothing listening on -ports")
	portSpec := flag.String("ports", "1-4", "ports to sweep")
	concs := flag.String("conc", "16,64,256,1024", "fixed connect concurrencies to try, besides the adaptive limit")
	flag.Parse()
	if p := netip.MustParsePrefix(*prefix); !netip.MustParsePrefix("127.0.0.0/8").Contains(p.Addr()) {
		log.Fatalf("%s is not loopback", *prefix)
	}
	ctx := context.Background()
	ports, err := targets.ParsePorts(*portSpec)
	if err != nil {
		log.Fatal(err)
	}

	t0 := time.Now()
	out, err := exec.Command("nmap", "-sT", "-Pn", "-n", "-T5", "--max-retries", "1", "-p", *portSpec, *prefix, "-oG", "/dev/null").CombinedOutput()
	if err != nil {
		log.Fatalf("nmap: %v\n%s", err, out)
	}
	nmapTime := time.Since(t0)

	run := func(min, max int, dial func(context.Context, string, string) (net.Conn, error)) (uint64, time.Duration) {
		set, err := targets.NewSet(ctx, targets.Options{Ports: ports, Seed: 1}, []string{*prefix}, nil, nil, nil)
		if err != nil {
			log.Fatal(err)
		}
		defer set.Close()
		s, err := scan.New(scan.Options{Concurrency: max, MinConcurrency: min, Dial: dial}, closer{}, nil)
		if err != nil {
			log.Fatal(err)
		}
		st, err := s.Run(ctx, walker{set}, func(*service.Service) error { return nil })
		if err != nil {
			log.Fatal(err)
		}
		return st.Done, st.Sweep
	}
	fmt.Printf("| sweep of %s × ports %s | pairs | wall | pairs/s | vs nmap -sT |\n|---|---|---|---|---|\n", *prefix, *portSpec)
	var pairs uint64
	for _, c := range strings.Split(*concs, ",") {
		n, err := strconv.Atoi(c)
		if err != nil {
			log.Fatal(err)
		}
		done, d := run(n, n, nil)
		pairs = done
		fmt.Printf("| llmfence, fixed %d in flight | %d | %.2f s | %.0f | %.2f× |\n", n, done, d.Seconds(), float64(done)/d.Seconds(), nmapTime.Seconds()/d.Seconds())
	}
	done, d := run(0, 4096, nil)
	fmt.Printf("| llmfence, adaptive (default, 64…4096) | %d | %.2f s | %.0f | %.2f× |\n", done, d.Seconds(), float64(done)/d.Seconds(), nmapTime.Seconds()/d.Seconds())
	// The same loop through net.Dialer, as before the direct connect(2)
	// path (internal/scan/connect_linux.go), for comparison.
	nd := &net.Dialer{}
	done, d = run(0, 4096, nd.DialContext)
	fmt.Printf("| llmfence, adaptive, through net.Dialer | %d | %.2f s | %.0f | %.2f× |\n", done, d.Seconds(), float64(done)/d.Seconds(), nmapTime.Seconds()/d.Seconds())
	fmt.Printf("| nmap -sT -Pn -T5 | %d | %.2f s | %.0f | 1.00× |\n", pairs, nmapTime.Seconds(), float64(pairs)/nmapTime.Seconds())
}
