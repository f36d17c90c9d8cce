package scan

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// ProgressBar returns a Progress callback that redraws one status line on a
// terminal: a bar, pairs done of total, rate, open ports, services and ETA.
// Call the returned finish function once the scan ends to end the line.
func ProgressBar(w io.Writer) (progress func(Stats), finish func()) {
	const width = 24
	drawn := false
	progress = func(st Stats) {
		frac := 0.0
		if st.Total > 0 {
			frac = float64(st.Done) / float64(st.Total)
			if frac > 1 {
				frac = 1
			}
		}
		fill := int(frac * width)
		secs := st.Elapsed.Seconds()
		rate := 0.0
		if secs > 0 {
			rate = float64(st.Done) / secs
		}
		eta := "--"
		if rate > 0 && st.Total > st.Done {
			eta = (time.Duration(float64(st.Total-st.Done)/rate) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(w, "\r[%s%s] %5.1f%%  %d/%d  %s/s  in flight ≤%d  open %d  services %d  ETA %s\x1b[K",
			strings.Repeat("=", fill), strings.Repeat(" ", width-fill), frac*100,
			st.Done, st.Total, humanRate(rate), st.Concurrency, st.Open, st.Services, eta)
		drawn = true
	}
	finish = func() {
		if drawn {
			fmt.Fprint(w, "\n")
		}
	}
	return progress, finish
}

func humanRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}
