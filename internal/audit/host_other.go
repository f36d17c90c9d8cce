//go:build !linux

package audit

import (
	"fmt"
	"runtime"
)

// HostReader returns the reader of the machine the audit runs on. Only
// Linux has one so far: a macOS reader would use sysctl/libproc and
// launchd plists, a Windows reader the process and TCP tables of the
// IP Helper API and services (docs/audit.md lists what each needs).
func HostReader() (Reader, string, error) {
	return nil, runtime.GOOS, fmt.Errorf("llmfence audit can read Linux machines only so far; there is no %s reader yet (see docs/audit.md)", runtime.GOOS)
}
