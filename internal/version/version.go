// Package version reports the llmfence build version, and the User-Agent
// built from it: the one source of both for every package.
package version

import (
	"runtime/debug"
	"strings"
)

// Version is set at build time with
// -ldflags=-X=github.com/llmfence/llmfence/internal/version.Version=v1.2.3.
// When unset it falls back to the module version recorded by the Go tool,
// then to "dev".
var Version = ""

// String returns the version to show users and send in the User-Agent.
func String() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Commit returns the VCS revision the binary was built from, if known.
func Commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

// UserAgent is the User-Agent of every request llmfence makes:
// "llmfence/<version>", with " (+<contact>)" when a contact (an URL or an
// e-mail address for the owners of the scanned networks) is given.
func UserAgent(contact string) string {
	ua := "llmfence/" + String()
	if c := strings.TrimSpace(contact); c != "" {
		ua += " (+" + c + ")"
	}
	return ua
}
