package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// proc is a child process the bench started.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
}

func (p *proc) watch() *proc {
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start runs name with args, output to dir/<label>.log.
func start(dir, label string, env []string, name string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, label+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", label, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	f.Close()
	return (&proc{name: label, cmd: cmd, log: logPath}).watch(), nil
}

// stop ends the process (SIGTERM, then SIGKILL after 5 s).
func (p *proc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the process log, for error messages.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 1500 {
		b = b[len(b)-1500:]
	}
	return strings.TrimSpace(string(b))
}

// freePort picks a free loopback TCP port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP waits until base answers any HTTP response on /api/version.
func waitHTTP(ctx context.Context, p *proc, base string) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if p != nil && p.exited() {
			break
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/version", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(50 * time.Millisecond)
	}
	msg := ""
	if p != nil {
		msg = ": " + p.tail()
	}
	return fmt.Errorf("%s did not come up on %s%s", p.name, base, msg)
}

// startUpstream re-runs this program as the fake Ollama and returns its
// base URL.
func startUpstream(dir string) (*proc, string, error) {
	return startChild("upstream", "-serve-upstream", "127.0.0.1:0")
}

// startChild re-runs this program with args as a server process named
// name, which prints its address on its first line of output.
func startChild(name string, args ...string) (*proc, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("find own executable: %w", err)
	}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	p := (&proc{name: name, cmd: cmd, log: os.DevNull}).watch()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%s did not report its address: %w", name, err)
	}
	return p, "http://" + strings.TrimSpace(line), nil
}

// nginxConf is a 1-worker reverse proxy that admits only "Bearer KEY".
const nginxConf = `%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/nginx-error.log warn;
worker_rlimit_nofile 20000;
events { worker_connections 16384; }
http {
    access_log off;
    map_hash_bucket_size 256;
    client_body_temp_path %[2]s/nginx-body;
    proxy_temp_path %[2]s/nginx-proxy;
    fastcgi_temp_path %[2]s/nginx-fastcgi;
    uwsgi_temp_path %[2]s/nginx-uwsgi;
    scgi_temp_path %[2]s/nginx-scgi;
    upstream llm {
        server %[3]s;
        keepalive 128;
    }
    map $http_authorization $llm_key_ok {
        default 0;
        "Bearer %[4]s" 1;
    }
    server {
        listen 127.0.0.1:%[5]d;
        location / {
            if ($llm_key_ok = 0) { return 401; }
            proxy_pass http://llm;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
`

func startNginx(dir, upHostPort, key string, port int) (*proc, error) {
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers need the 0700 temp dir
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, nginxConf, user, dir, upHostPort, key, port), 0o600); err != nil {
		return nil, err
	}
	return start(dir, "nginx", nil, "nginx", "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"),
		"-c", conf, "-g", "daemon off;")
}

// caddyfile is a reverse proxy that answers 401 unless Authorization is
// exactly "Bearer KEY". No flush_interval: a chunked (unknown-length)
// response is already flushed on every write, and Caddy 2.6's explicit
// "flush_interval -1" mode cuts streams short under load ("use of closed
// network connection").
const caddyfile = `{
	admin off
	auto_https off
	storage file_system %[1]s/caddy-data
}
http://127.0.0.1:%[4]d {
	@nokey not header Authorization "Bearer %[3]s"
	respond @nokey 401
	reverse_proxy %[2]s
}
`

func startCaddy(dir, upHostPort, key string, port int) (*proc, error) {
	conf := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(conf, fmt.Appendf(nil, caddyfile, dir, upHostPort, key, port), 0o600); err != nil {
		return nil, err
	}
	env := []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "xdg-data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg-config"), "XDG_CACHE_HOME=" + filepath.Join(dir, "xdg-cache")}
	return start(dir, "caddy", env, "caddy", "run", "--config", conf, "--adapter", "caddyfile")
}

// guardSetup creates the SQLite store and a key with generous limits, and
// writes the guard's config file; it returns the key.
func guardSetup(ctx context.Context, dir, bin string) (string, error) {
	db := filepath.Join(dir, "guard.db")
	cmd := exec.CommandContext(ctx, bin, "--db", db, "keys", "create", "bench", "--models", "*",
		"--rpm", "100000000", "--tpm", "2000000000", "--concurrent", "4096",
		"--daily-tokens", "1000000000000", "--monthly-tokens", "10000000000000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("llmfence keys create: %w: %s", err, stderr.String())
	}
	key := strings.TrimSpace(string(out))
	if key == "" || strings.ContainsAny(key, " \n") {
		return "", fmt.Errorf("llmfence keys create printed %q, want one key", out)
	}
	// Connections per IP and in all: all load comes from 127.0.0.1, and
	// the realistic load holds 2,000 streams open at once.
	cfg := "max_conns_per_ip: 8192\nmax_conns: 8192\n"
	if err := os.WriteFile(filepath.Join(dir, "guard.yaml"), []byte(cfg), 0o600); err != nil {
		return "", err
	}
	return key, nil
}

func startGuard(dir, bin, label, upstream string, port int) (*proc, error) {
	return startGuardMetrics(dir, bin, label, upstream, port, "")
}

// startGuardMetrics is startGuard with the metrics listener on metrics
// ("" for none).
func startGuardMetrics(dir, bin, label, upstream string, port int, metrics string) (*proc, error) {
	return start(dir, label, nil, bin, "--db", filepath.Join(dir, "guard.db"), "guard",
		"--config", filepath.Join(dir, "guard.yaml"), "--upstream", upstream,
		"--listen", "127.0.0.1:"+strconv.Itoa(port), "--metrics", metrics)
}

// procStatus reads a field (e.g. "VmHWM") of /proc/PID/status in KiB.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New(field + " not found")
}

// children lists the child PIDs of pid (nginx workers).
func children(pid int) []int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}
