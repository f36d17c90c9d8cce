//go:build linux

package audit

// HostReader returns the reader of the machine the audit runs on.
func HostReader() (Reader, string, error) { return NewLinux("/"), "linux", nil }
