package guard

// What a configuration reload may change, and what needs a restart, is
// each setting's Reload class in the settings table (settings.go).
//
// A reload (SIGHUP, a changed --config file, or a call of Server.Reload)
// takes effect for requests that start after it for the Reloads settings,
// and re-reads the TLS certificate, key and client CA files (ReloadsFile,
// even when their paths stay the same). NeedsRestart settings are built
// into listeners, the transport, the authenticator, the abuse detector or
// the audit spool at start-up, and turning a ReloadsFile setting on or off
// changes what the listener speaks: a reload that changes them keeps the
// running values and logs a warning naming them.

// restartOnlyChanges names the settings of next that differ from running
// but take effect only after a restart.
func restartOnlyChanges(running, next Config) []string {
	var out []string
	for _, s := range Settings() {
		if s.needsRestart(&running, &next) {
			out = append(out, s.Key)
		}
	}
	return out
}

// keepRestartOnly returns next with the restart-only settings of running.
func keepRestartOnly(running, next Config) Config {
	for _, s := range Settings() {
		if s.needsRestart(&running, &next) {
			s.v.copy(&next, &running)
		}
	}
	return next
}

// changedSettings names the reloadable settings that differ between the
// running configuration and the one replacing it.
func changedSettings(running, next Config) []string {
	var out []string
	for _, s := range Settings() {
		if s.Reload != NeedsRestart && s.differs(&running, &next) {
			out = append(out, s.Key)
		}
	}
	return out
}
