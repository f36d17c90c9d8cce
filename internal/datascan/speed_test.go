package datascan

import (
	"bufio"
	"encoding/json"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/llmfence/llmfence/internal/gibberish"
)

func TestSpeedComponents(t *testing.T) {
	runtime.LockOSThread()
	p := os.Getenv("DS_SPEED_FILE")
	if p == "" {
		t.Skip("DS_SPEED_FILE not set")
	}
	f, _ := os.Open(p)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var texts []string
	n := 0
	for sc.Scan() && n < 20<<20 {
		var m map[string]string
		json.Unmarshal(sc.Bytes(), &m)
		texts = append(texts, m["text"])
		n += len(m["text"])
	}
	s, _ := New(Options{})
	m := gibberish.Default()
	for _, c := range []struct {
		name string
		fn   func(string)
	}{
		{"redact.Find", func(x string) { s.red.Find(x) }},
		{"injections", func(x string) { s.inj.find(x) }},
		{"FindTurn", func(x string) { m.FindTurn(x) }},
		{"signature", func(x string) { signature(x) }},
	} {
		start := cpuNow()
		for _, x := range texts {
			c.fn(x)
		}
		d := cpuNow() - start
		t.Logf("%-12s %.1f MB/s", c.name, float64(n)/1e6/d.Seconds())
	}
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
