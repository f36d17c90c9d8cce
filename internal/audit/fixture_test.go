package audit

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixture builds a machine below a temporary root: /proc with processes,
// their namespaces, open sockets and TCP tables, /etc/passwd, and whatever
// else a test copies in (unit files, stores). It stands in for a live
// machine where a test needs states it cannot create for real (another
// container, a process that vanished, entries that cannot be read).
type fixture struct {
	t    *testing.T
	root string
}

// fixProc is one process of a fixture.
type fixProc struct {
	pid, ppid, uid int
	argv           []string
	exe, cwd       string
	env            map[string]string // nil: environ cannot be read
	cgroup         string
	netns, mntns   string
	sockets        []uint64
	noFDs          bool // its fd directory cannot be read
}

const (
	hostNetNS = "net:[4026531840]"
	hostMntNS = "mnt:[4026531841]"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, root: t.TempDir()}
	f.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"+
		"ollama:x:998:998::/usr/share/ollama:/bin/false\n"+
		"alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"+
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
	f.write("etc/os-release", "NAME=Fixture\nPRETTY_NAME=\"Fixture Linux 1\"\n")
	f.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
	f.write("proc/sys/kernel/hostname", "fixture-host\n")
	f.write("proc/sys/kernel/osrelease", "6.1.0-fixture\n")
	// The auditing process itself.
	f.proc(fixProc{pid: 1, uid: 0, argv: []string{"/usr/local/bin/llmfence", "audit"}, exe: "/usr/local/bin/llmfence",
		env: map[string]string{}, netns: hostNetNS, mntns: hostMntNS, cgroup: "0::/user.slice"})
	f.link("proc/self", "1")
	return f
}

func (f *fixture) path(rel string) string { return filepath.Join(f.root, filepath.FromSlash(rel)) }

func (f *fixture) write(rel, content string) {
	f.t.Helper()
	p := f.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) mkdir(rel string) {
	f.t.Helper()
	if err := os.MkdirAll(f.path(rel), 0o755); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) link(rel, target string) {
	f.t.Helper()
	p := f.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		f.t.Fatal(err)
	}
}

// proc writes /proc/<pid> for p.
func (f *fixture) proc(p fixProc) {
	f.t.Helper()
	d := "proc/" + strconv.Itoa(p.pid) + "/"
	f.write(d+"cmdline", strings.Join(p.argv, "\x00")+"\x00")
	name := ""
	if len(p.argv) > 0 {
		name = filepath.Base(p.argv[0])
	}
	f.write(d+"status", fmt.Sprintf("Name:\t%s\nState:\tS (sleeping)\nPid:\t%d\nPPid:\t%d\nUid:\t%d\t%d\t%d\t%d\n", name, p.pid, p.ppid, p.uid, p.uid, p.uid, p.uid))
	if p.exe != "" {
		f.link(d+"exe", p.exe)
	} else {
		f.mkdir(d + "exe") // not a link: "could not read"
	}
	if p.cwd != "" {
		f.link(d+"cwd", p.cwd)
	}
	if p.env != nil {
		var b strings.Builder
		for k, v := range p.env {
			b.WriteString(k + "=" + v + "\x00")
		}
		f.write(d+"environ", b.String())
	} else {
		f.mkdir(d + "environ") // reading a directory fails: "could not read"
	}
	f.write(d+"cgroup", p.cgroup+"\n")
	if p.netns != "" {
		f.link(d+"ns/net", p.netns)
	}
	if p.mntns != "" {
		f.link(d+"ns/mnt", p.mntns)
	}
	f.link(d+"root", "/")
	if p.noFDs {
		f.write(d+"fd", "not a directory")
	} else {
		f.mkdir(d + "fd")
		f.link(d+"fd/0", "/dev/null")
		for i, ino := range p.sockets {
			f.link(fmt.Sprintf("%sfd/%d", d, i+3), fmt.Sprintf("socket:[%d]", ino))
		}
	}
	f.mkdir(d + "net")
	f.write(d+"net/tcp", tcpHeader)
}

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// netTCP writes /proc/<pid>/net/tcp (or tcp6) with listening sockets.
func (f *fixture) netTCP(pid int, v6 bool, socks ...fixSock) {
	f.t.Helper()
	var b strings.Builder
	b.WriteString(tcpHeader)
	for i, s := range socks {
		st := "0A"
		if s.state != "" {
			st = s.state
		}
		fmt.Fprintf(&b, "%4d: %s:%04X 00000000:0000 %s 00000000:00000000 00:00000000 00000000 %5d        0 %d 1 0000000000000000 100 0 0 10 0\n",
			i, s.addr, s.port, st, s.uid, s.inode)
	}
	file := "tcp"
	if v6 {
		file = "tcp6"
	}
	f.write(fmt.Sprintf("proc/%d/net/%s", pid, file), b.String())
}

type fixSock struct {
	addr  string // as /proc prints it, e.g. procAddr4(0,0,0,0)
	port  int
	uid   int
	inode uint64
	state string
}

// procAddr4 prints an IPv4 address the way /proc/net/tcp does on this
// machine (a host-order 32-bit word).
func procAddr4(a, b, c, d byte) string {
	return wordHex([4]byte{a, b, c, d})
}

// wordHex prints four address bytes as the kernel does: their memory
// word as a native-endian number.
func wordHex(w [4]byte) string { return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(w[:])) }

// procAddr6 prints an IPv6 address as /proc/net/tcp6 does.
func procAddr6(ip [16]byte) string {
	var s string
	for i := 0; i < 16; i += 4 {
		s += wordHex([4]byte{ip[i], ip[i+1], ip[i+2], ip[i+3]})
	}
	return s
}

// copyTree copies a testdata directory into the fixture root.
func (f *fixture) copyTree(src, dstRel string) {
	f.t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(f.path(dstRel), rel)
		if info.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		}
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) reader() *Linux {
	l := NewLinux(f.root)
	l.EUID = 0
	return l
}
