package gibberish

import (
	"errors"
	"math"
	"slices"
	"sort"
)

// FitOptions control Fit.
type FitOptions struct {
	// Window is the number of units per training window (default 32).
	Window int
	// FalseAlarm is the share of natural windows of any one kind allowed
	// at or above the threshold (default 0.002).
	FalseAlarm float64
	// Iterations of gradient descent (default 3000).
	Iterations int
	// TurnMin is the fewest units a turn must span (default 24).
	TurnMin int
}

// FitReport describes a fitted model on its training windows.
type FitReport struct {
	Windows     map[string]int     // windows per kind
	Flagged     map[string]float64 // share of windows at or above the threshold, per kind
	Weights     map[string]float64
	Bias, Mid   float64
	Scale       float64
	NaturalKind []string
	SoupKind    []string
}

type window struct {
	x    [nFeatures]float64
	soup bool
	kind string
}

// Fit returns a copy of m whose weights and calibration are fitted to tell
// the natural texts from the soup texts (both keyed by kind): a logistic
// regression on the mean unit features of windows of Window units, then a
// threshold that keeps every natural kind's false alarms at or below
// FalseAlarm.
func (m *Model) Fit(natural, soup map[string][]string, opts FitOptions) (*Model, FitReport, error) {
	if opts.Window <= 0 {
		opts.Window = 32
	}
	if opts.FalseAlarm <= 0 {
		opts.FalseAlarm = 0.002
	}
	if opts.Iterations <= 0 {
		opts.Iterations = 3000
	}
	if opts.TurnMin <= 0 {
		opts.TurnMin = 24
	}
	var ws []window
	rep := FitReport{Windows: map[string]int{}, Flagged: map[string]float64{}, Weights: map[string]float64{}}
	for _, set := range []struct {
		texts map[string][]string
		soup  bool
	}{{natural, false}, {soup, true}} {
		kinds := make([]string, 0, len(set.texts))
		for k := range set.texts {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			if set.soup {
				rep.SoupKind = append(rep.SoupKind, k)
			} else {
				rep.NaturalKind = append(rep.NaturalKind, k)
			}
			for _, t := range set.texts[k] {
				for _, x := range m.windows(t, opts.Window) {
					ws = append(ws, window{x: x, soup: set.soup, kind: k})
					rep.Windows[k]++
				}
			}
		}
	}
	var n0, n1 float64
	for _, w := range ws {
		if w.soup {
			n1++
		} else {
			n0++
		}
	}
	if n0 == 0 || n1 == 0 {
		return nil, rep, errors.New("gibberish: fit needs natural and soup windows")
	}
	w, b := logistic(ws, n0, n1, opts.Iterations)
	c := *m
	for i := range w {
		c.weights[i] = float32(w[i])
		rep.Weights[featureNames[i]] = w[i]
	}
	c.bias = float32(b)
	// Threshold: the highest (1-FalseAlarm) quantile of any natural kind.
	byKind := map[string][]float64{}
	for _, x := range ws {
		if !x.soup {
			byKind[x.kind] = append(byKind[x.kind], dot(w, b, &x.x))
		}
	}
	mid := math.Inf(-1)
	for _, zs := range byKind {
		slices.Sort(zs)
		q := zs[min(len(zs)-1, int(math.Ceil(float64(len(zs))*(1-opts.FalseAlarm))))]
		mid = max(mid, q)
	}
	var soupZ []float64
	for _, x := range ws {
		if x.soup {
			soupZ = append(soupZ, dot(w, b, &x.x))
		}
	}
	slices.Sort(soupZ)
	med := soupZ[len(soupZ)/2]
	scale := 1.0
	if med > mid {
		scale = math.Log(99) / (med - mid)
	}
	c.mid, c.scale, c.turnMin = float32(mid), float32(scale), int32(opts.TurnMin)
	rep.Bias, rep.Mid, rep.Scale = b, mid, scale
	flag := map[string]float64{}
	for _, x := range ws {
		if dot(w, b, &x.x) >= mid {
			flag[x.kind]++
		}
	}
	for k, v := range flag {
		rep.Flagged[k] = v / float64(rep.Windows[k])
	}
	return &c, rep, nil
}

func dot(w [nFeatures]float64, b float64, x *[nFeatures]float64) float64 {
	z := b
	for i := range w {
		z += w[i] * x[i]
	}
	return z
}

// windows returns the mean features of consecutive windows of size units.
func (m *Model) windows(text string, size int) [][nFeatures]float64 {
	var (
		out [][nFeatures]float64
		acc [nFeatures]float64
		n   int
		lx  = lexer{m: m}
	)
	lx.reset()
	each(&lx, text, func(u *unitOut) {
		for i, v := range u.f {
			acc[i] += float64(v)
		}
		n++
		if n == size {
			for i := range acc {
				acc[i] /= float64(size)
			}
			out = append(out, acc)
			acc, n = [nFeatures]float64{}, 0
		}
	})
	return out
}

// logistic fits class-balanced L2-regularised logistic regression by
// gradient descent on standardised features and returns the weights for
// the raw features.
func logistic(ws []window, n0, n1 float64, iters int) ([nFeatures]float64, float64) {
	var mu, sd [nFeatures]float64
	for _, w := range ws {
		for k := range mu {
			mu[k] += w.x[k]
		}
	}
	for k := range mu {
		mu[k] /= float64(len(ws))
	}
	for _, w := range ws {
		for k := range sd {
			d := w.x[k] - mu[k]
			sd[k] += d * d
		}
	}
	for k := range sd {
		sd[k] = math.Sqrt(sd[k]/float64(len(ws))) + 1e-9
	}
	var (
		w  [nFeatures]float64
		b  float64
		lr = 0.5
	)
	for range iters {
		var g [nFeatures]float64
		var gb float64
		for _, x := range ws {
			z := b
			for k := range w {
				z += w[k] * (x.x[k] - mu[k]) / sd[k]
			}
			p := 1 / (1 + math.Exp(-z))
			y, wt := 0.0, 0.5/n0
			if x.soup {
				y, wt = 1, 0.5/n1
			}
			d := wt * (p - y)
			for k := range w {
				g[k] += d * (x.x[k] - mu[k]) / sd[k]
			}
			gb += d
		}
		for k := range w {
			w[k] -= lr * (g[k] + 1e-4*w[k])
		}
		b -= lr * gb
	}
	var wo [nFeatures]float64
	bo := b
	for k := range w {
		wo[k] = w[k] / sd[k]
		bo -= w[k] * mu[k] / sd[k]
	}
	return wo, bo
}
