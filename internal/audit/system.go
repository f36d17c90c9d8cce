package audit

import (
	"context"
	"errors"
	"net/netip"

	"github.com/llmfence/llmfence/internal/service"
)

// Reader is everything the audit reads from the operating system. There is
// one implementation per OS (Linux: Linux, reading /proc, /etc and the
// systemd unit directories); the rest of the audit is OS-neutral. Model
// stores are plain directories and are read with the os package.
//
// A Reader never fails the whole audit for one unreadable entry: fields it
// could not read are left empty and named in Process.Unread, so the audit
// reports "could not read" instead of guessing.
type Reader interface {
	// Self describes the auditing process: its PID, whether it runs with
	// full privileges, and its namespaces.
	Self(ctx context.Context) (Self, error)
	// Machine describes the machine (host name, OS, kernel, machine ID).
	Machine(ctx context.Context) (Machine, error)
	// PIDs lists the processes visible to the audit.
	PIDs(ctx context.Context) ([]int, error)
	// Process reads what identifies a process: command line, executable,
	// effective user and parent. It returns ErrGone when the process exited,
	// and ErrNoCommand for kernel threads and zombies.
	Process(ctx context.Context, pid int) (*Process, error)
	// Inspect reads the rest of a process the audit identified as a runtime:
	// environment, working directory, control group and namespaces.
	Inspect(ctx context.Context, p *Process) error
	// Sockets returns the inodes of the sockets the process holds open.
	Sockets(ctx context.Context, p *Process) ([]uint64, error)
	// Listening returns the listening TCP sockets of the process's network
	// namespace (every socket of that namespace, not only the process's).
	Listening(ctx context.Context, p *Process) ([]Listener, error)
	// Units returns the service definitions (systemd units with their
	// drop-ins) whose command want keeps, with notes on what could not be
	// read. Environment files are read only for the units kept.
	Units(ctx context.Context, want func(argv []string) bool) ([]Unit, []service.Message)
	// Users returns the accounts of the machine (for names and homes).
	Users(ctx context.Context) ([]User, error)
	// HostPath turns a path as the process sees it (its mount namespace,
	// e.g. inside a container) into a path the audit can open; with a nil
	// process, a path of the machine itself.
	HostPath(p *Process, path string) string
	// Executable returns a path from which the process's executable can be
	// read, or "" when it cannot.
	Executable(p *Process) string
}

// ErrGone means the process exited while it was being read.
var ErrGone = errors.New("process exited")

// ErrNoCommand means the process has no command line (a kernel thread or a
// zombie).
var ErrNoCommand = errors.New("process has no command line")

// Self is the auditing process.
type Self struct {
	PID        int
	Privileged bool   // root (or equivalent): every process and store is readable
	NetNS      string // network namespace identity, "" if unknown
	MntNS      string // mount namespace identity, "" if unknown
	// Notes say why parts of the machine are hidden from this process
	// (e.g. /proc mounted with hidepid), as the audit's messages.
	Notes []service.Message
}

// Machine identifies the audited machine.
type Machine struct {
	Hostname  string
	MachineID string
	OS        string // e.g. "Debian GNU/Linux 13 (trixie)"
	Kernel    string
}

// Process is one process as far as it could be read.
type Process struct {
	PID, PPID int
	UID       int // effective user, -1 when unknown
	Name      string
	Exe       string   // resolved executable path, "" when unreadable
	Argv      []string // command line
	Cwd       string
	Env       map[string]string // nil when unreadable
	Cgroup    string            // the process's control group path
	NetNS     string
	MntNS     string
	Root      string // its root directory as the audit sees it ("/" normally)
	// Unread maps a part of the process ("environment", "open sockets", ...)
	// to why it could not be read.
	Unread map[string]string
}

func (p *Process) unread(part string, err error) {
	if p.Unread == nil {
		p.Unread = map[string]string{}
	}
	p.Unread[part] = errText(err)
}

// Listener is one listening TCP socket.
type Listener struct {
	Addr  netip.AddrPort
	Inode uint64
	UID   int
}

// Unit is one service definition.
type Unit struct {
	Name      string   // e.g. "ollama.service"
	Path      string   // the unit file
	DropIns   []string // drop-in files applied, in order
	User      string   // User=, "" for root (system units)
	UserUnit  bool     // a per-user unit (~/.config/systemd/user)
	Owner     string   // for user units: whose
	ExecStart []string // the command, split
	WorkDir   string
	// Env holds Environment= and EnvironmentFile= assignments in effect;
	// EnvSource says where each came from.
	Env       map[string]string
	EnvSource map[string]string
	EnvSrc    map[string]service.Message // the messages EnvSource was written from
	Notes     []service.Message          // what could not be read, as the audit's messages
}

// User is one account.
type User struct {
	Name string
	UID  int
	Home string
}
