package route

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Decision is the routing verdict for one request.
type Decision struct {
	// Class is what the request may do; Denied means it must not be
	// forwarded. An Admin decision still needs an admin key.
	Class Class
	// Path is the normalised path to forward (set whenever the raw path
	// could be normalised). The proxy forwards this path, never the raw one.
	Path string
	// Route is the id of the table entry that matched, if any.
	Route string
	// Reason explains the decision in the client's terms.
	Reason string
	// Status is the HTTP status the gateway answers with when it does not
	// forward: 400 malformed path, 404 no such route, 405 wrong method,
	// 204 for a CORS preflight. Zero when Class is not Denied.
	Status int
	// Allow lists the methods the matched path accepts (for 405 and
	// preflight answers), comma-separated.
	Allow string
	// Preflight is set for OPTIONS requests: the gateway answers them
	// itself and never forwards them.
	Preflight bool
	// Meter is the matched inference route's meter ID (MeterNone when it
	// cannot be billed); empty for other classes.
	Meter string
	// Model is the model named in the path (the route's model_param), if
	// any.
	Model string
	// ModelList says whether the answer lists models, and when to filter
	// it (route.ModelListFiltered, route.ModelListAlways).
	ModelList string
}

// Decide classifies one request by method and raw path (the escaped path as
// received, e.g. r.URL.EscapedPath(); a query string is ignored). The decision
// is made on the normalised path, which is returned for forwarding.
func (t *Table) Decide(method, rawPath string) Decision {
	norm, err := Normalize(rawPath)
	if err != nil {
		reason := err.Error()
		var pe *PathError
		if errors.As(err, &pe) {
			reason = "malformed request path: " + pe.Reason
		}
		return Decision{Class: Denied, Reason: reason, Status: http.StatusBadRequest}
	}
	segs := splitPath(norm)

	// Every route whose pattern fits the path, whatever its methods.
	var matched []*Route
	for i := range t.Routes {
		if t.Routes[i].matches(segs, false) {
			matched = append(matched, &t.Routes[i])
		}
	}

	if method == http.MethodOptions {
		if len(matched) == 0 {
			return t.notFound(norm, segs)
		}
		return Decision{
			Class: Denied, Path: norm, Route: matched[0].ID, Status: http.StatusNoContent,
			Allow: allowOf(matched), Preflight: true,
			Reason: "CORS preflight: answered by the gateway, not forwarded",
		}
	}

	for _, r := range matched {
		if r.allows(method) {
			d := Decision{
				Class: r.Class, Path: norm, Route: r.ID, Meter: r.Meter, ModelList: r.ModelList,
				Reason: fmt.Sprintf("%s route %s", r.Class, r.ID),
			}
			if r.modelSeg >= 0 && r.modelSeg < len(segs) {
				d.Model = segs[r.modelSeg]
			}
			return d
		}
	}
	if len(matched) > 0 {
		return Decision{
			Class: Denied, Path: norm, Route: matched[0].ID, Status: http.StatusMethodNotAllowed,
			Allow:  allowOf(matched),
			Reason: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", method, norm, allowOf(matched)),
		}
	}
	return t.notFound(norm, segs)
}

func (t *Table) notFound(norm string, segs []string) Decision {
	for i := range t.Routes {
		if t.Routes[i].matches(segs, true) {
			return Decision{
				Class: Denied, Path: norm, Status: http.StatusNotFound,
				Reason: fmt.Sprintf("path %s differs only in letter case from route %s; %s routes are case-sensitive, so it is refused", norm, t.Routes[i].Pattern, t.Kind),
			}
		}
	}
	return Decision{
		Class: Denied, Path: norm, Status: http.StatusNotFound,
		Reason: fmt.Sprintf("%s is not a route this gateway opens for %s", norm, t.Kind),
	}
}

// allowOf lists, in a stable order, the methods the routes accept, plus
// OPTIONS (answered by the gateway).
func allowOf(rs []*Route) string {
	var ms []string
	for _, r := range rs {
		for _, m := range r.Methods {
			if !slices.Contains(ms, m) {
				ms = append(ms, m)
			}
		}
	}
	order := func(m string) int {
		if i := slices.Index(knownMethods, m); i >= 0 {
			return i
		}
		return len(knownMethods)
	}
	slices.SortFunc(ms, func(a, b string) int { return order(a) - order(b) })
	ms = append(ms, http.MethodOptions)
	return strings.Join(ms, ", ")
}
