// Package rewrite is pqvc's pattern-rewriting engine: rules as data, matched
// over the IR in topological order to a bounded fixpoint.
//
// A Rule pairs a Pattern (an op tree with variables and per-node predicates)
// with a Check that says why it rejects a match and a Rewrite that builds the
// replacement. Each rule carries its s-expression in a comment:
//
//	// Add(MatMul(x, w), b) => Gemm(x, w, b)
//	var gemm = &rewrite.Rule{
//		Name:    "gemm",
//		Pattern: rewrite.Op("Add", rewrite.Op("MatMul", rewrite.Var("x"), rewrite.Var("w", rewrite.IsConst)), rewrite.Var("b")),
//		Check:   func(m *rewrite.Match) string { … },
//		Rewrite: func(m *rewrite.Match, g *ir.Graph) (*ir.Value, error) { … },
//	}
//
// Apply walks the graph's values in topological order; at each value the
// first rule that matches and is accepted rewrites it, the engine redirects
// the value's uses to the replacement and deletes whatever became dead, and
// sweeps repeat until one changes nothing. Commutative ops (OpDef.Commutative)
// match their first two arguments in either order. Stats count, per rule,
// matches, rewrites and rejections with their reasons, for --explain-style
// debugging ("gemm: 12 matched, 11 rewritten, 1 rejected: w: not const").
//
// The shape follows tinygrad's PatternMatcher (rules as data, first match
// wins) and onnxscript's rewriter (check says why a match failed).
package rewrite

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pqvc/pqvc/ir"
)

// Rule is one rewrite: where Pattern matches and Check accepts, Rewrite
// builds the value that replaces the match's root.
type Rule struct {
	Name    string
	Pattern *Pattern
	// Check returns "" to accept the match or a short reason to reject it.
	// Nil accepts every match.
	Check func(m *Match) (reason string)
	// Rewrite builds the replacement for m.Root and returns it. The engine
	// then points m.Root's users (and graph outputs) at it and deletes the
	// values that became dead. The replacement must have m.Root's type.
	// Returning m.Root itself means the rule changed m.Root in place.
	Rewrite func(m *Match, g *ir.Graph) (*ir.Value, error)
}

// Match is one accepted binding of a rule's pattern.
type Match struct {
	Root *ir.Value
	Rule *Rule
	vars map[string]*ir.Value
}

// V returns the value bound to name. An unknown name is a bug in the rule
// and panics.
func (m *Match) V(name string) *ir.Value {
	v, ok := m.vars[name]
	if !ok {
		panic(fmt.Sprintf("rewrite: rule %s: pattern %v binds no %q", m.Rule.Name, m.Rule.Pattern, name))
	}
	return v
}

// Has reports whether name is bound to a present value.
func (m *Match) Has(name string) bool { return m.vars[name] != nil }

// RuleStats counts what one rule did. Every structural match ends as a
// rewrite or a rejection, so Matched == Rewritten + Rejected.
type RuleStats struct {
	Matched   int `json:"matched"`
	Rewritten int `json:"rewritten"`
	Rejected  int `json:"rejected"`
	// Reasons counts rejections by reason: a predicate that failed
	// ("b: not const") or what Check returned.
	Reasons map[string]int `json:"reasons,omitempty"`
}

// Stats is what Apply did.
type Stats struct {
	// Iterations is the number of sweeps that rewrote something; a last
	// sweep that confirmed the fixpoint is not counted.
	Iterations int                   `json:"iterations"`
	Rules      map[string]*RuleStats `json:"rules"`
	// Removed counts values deleted because a rewrite left them dead.
	Removed int `json:"removed"`
}

// Rewrites is the total number of rewrites over all rules.
func (s *Stats) Rewrites() int {
	n := 0
	for _, r := range s.Rules {
		n += r.Rewritten
	}
	return n
}

// String explains the run, one rule a line, reasons most frequent first.
func (s *Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d iterations, %d values removed\n", s.Iterations, s.Removed)
	names := make([]string, 0, len(s.Rules))
	for n := range s.Rules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := s.Rules[n]
		fmt.Fprintf(&b, "%s: %d matched, %d rewritten, %d rejected\n", n, r.Matched, r.Rewritten, r.Rejected)
		reasons := make([]string, 0, len(r.Reasons))
		for why := range r.Reasons {
			reasons = append(reasons, why)
		}
		sort.Slice(reasons, func(i, j int) bool {
			a, c := r.Reasons[reasons[i]], r.Reasons[reasons[j]]
			return a > c || a == c && reasons[i] < reasons[j]
		})
		for _, why := range reasons {
			fmt.Fprintf(&b, "    %4d  %s\n", r.Reasons[why], why)
		}
	}
	return b.String()
}

// Apply rewrites g with rules until a sweep changes nothing. It fails if
// more than maxIters sweeps rewrite something (a rule that undoes another
// would otherwise loop forever), if a Rewrite fails, or if a replacement's
// type differs from the value it replaces. The stats are returned even on
// error, for debugging.
func Apply(g *ir.Graph, rules []*Rule, maxIters int) (*Stats, error) {
	st := &Stats{Rules: map[string]*RuleStats{}}
	if maxIters < 1 {
		return st, fmt.Errorf("rewrite: maxIters is %d, want at least 1", maxIters)
	}
	for _, r := range rules {
		if r == nil || r.Name == "" || r.Rewrite == nil {
			return st, errors.New("rewrite: a rule needs a name and a Rewrite")
		}
		if _, dup := st.Rules[r.Name]; dup {
			return st, fmt.Errorf("rewrite: two rules are called %q", r.Name)
		}
		if err := r.Pattern.validate(); err != nil {
			return st, fmt.Errorf("rewrite: rule %s: %w", r.Name, err)
		}
		st.Rules[r.Name] = &RuleStats{}
	}
	// A value keeps being rejected by a rule sweep after sweep; count it
	// once so the numbers describe the graph, not the number of sweeps.
	rejected := map[*Rule]map[*ir.Value]string{}
	for iter := 0; iter <= maxIters; iter++ {
		order, err := g.Topo()
		if err != nil {
			return st, fmt.Errorf("rewrite: %w", err)
		}
		n := 0
		for _, v := range order {
			if v.Graph() != g || v.Op == ir.OpInput {
				continue // removed earlier in this sweep, or nothing to rewrite
			}
			for _, r := range rules {
				if r.Pattern.Op != "" && r.Pattern.Op != v.Op {
					continue
				}
				done, err := try(g, r, v, st, rejected)
				if err != nil {
					return st, err
				}
				if done {
					n++
					break
				}
			}
		}
		if n == 0 {
			return st, nil
		}
		st.Iterations++
	}
	return st, fmt.Errorf("rewrite: no fixpoint after %d iterations (%s)", maxIters, busiest(st))
}

// try matches r at v and, if accepted, rewrites; done reports a rewrite.
func try(g *ir.Graph, r *Rule, v *ir.Value, st *Stats, rejected map[*Rule]map[*ir.Value]string) (done bool, err error) {
	m := &matcher{bind: map[string]*ir.Value{}}
	match := &Match{Root: v, Rule: r, vars: m.bind}
	var reason string
	structural := false
	ok := m.match(r.Pattern, v, func() bool {
		structural = true
		for _, b := range m.nodes {
			for _, p := range b.p.Preds {
				if !p.Fn(b.v) {
					if reason == "" {
						reason = b.p.label() + ": not " + p.Name
					}
					return false
				}
			}
		}
		if r.Check != nil {
			if why := r.Check(match); why != "" {
				if reason == "" {
					reason = why
				}
				return false
			}
		}
		return true
	})
	if !structural {
		return false, nil
	}
	rs := st.Rules[r.Name]
	if !ok {
		if rejected[r] == nil {
			rejected[r] = map[*ir.Value]string{}
		}
		if _, seen := rejected[r][v]; !seen {
			rejected[r][v] = reason
			rs.Matched++
			rs.Rejected++
			if rs.Reasons == nil {
				rs.Reasons = map[string]int{}
			}
			rs.Reasons[reason]++
		}
		return false, nil
	}
	repl, err := r.Rewrite(match, g)
	if err != nil {
		return false, fmt.Errorf("rewrite: rule %s at %s: %w", r.Name, v, err)
	}
	switch {
	case repl == nil:
		return false, fmt.Errorf("rewrite: rule %s at %s returned no value", r.Name, v)
	case repl.Graph() != g:
		return false, fmt.Errorf("rewrite: rule %s at %s returned %s, which is not in the graph", r.Name, v, repl)
	case !repl.Type.Equal(v.Type):
		return false, fmt.Errorf("rewrite: rule %s at %s: replacement %s has type %v, want %v", r.Name, v, repl, repl.Type, v.Type)
	}
	if why, seen := rejected[r][v]; seen { // rejected in an earlier sweep, accepted now
		delete(rejected[r], v)
		rs.Rejected--
		rs.Matched--
		if rs.Reasons[why]--; rs.Reasons[why] == 0 {
			delete(rs.Reasons, why)
		}
	}
	rs.Matched++
	rs.Rewritten++
	if repl != v {
		v.ReplaceUses(repl)
		st.Removed += RemoveDeadFrom(g, v)
	}
	return true, nil
}

func busiest(st *Stats) string {
	best, n := "", -1
	for name, r := range st.Rules {
		if r.Rewritten > n || r.Rewritten == n && name < best {
			best, n = name, r.Rewritten
		}
	}
	return fmt.Sprintf("rule %s rewrote %d times", best, n)
}

// RemoveDeadFrom deletes v if nothing uses it (it is no graph output and no
// input), then its arguments that became unused, and so on. It returns how
// many values it deleted. Passes call it after ReplaceUses so they clean up
// exactly what they orphaned, leaving unrelated dead code to dce.
func RemoveDeadFrom(g *ir.Graph, v *ir.Value) int {
	n := 0
	work := []*ir.Value{v}
	for len(work) > 0 {
		v := work[len(work)-1]
		work = work[:len(work)-1]
		if v == nil || v.Graph() != g || v.Op == ir.OpInput || len(v.Uses()) > 0 || isOutput(v) {
			continue
		}
		args := append([]*ir.Value(nil), v.Args()...)
		if g.Remove(v) != nil {
			continue
		}
		n++
		work = append(work, args...)
	}
	return n
}

// bound is one pattern node and the value it matched.
type bound struct {
	p *Pattern
	v *ir.Value
}

// matcher matches patterns with backtracking: commutative ops try both
// argument orders, and a repeated variable must bind the same value. The
// continuation k runs once the whole tree has matched; returning false
// backtracks into the next alternative.
type matcher struct {
	bind  map[string]*ir.Value
	nodes []bound
}

func (m *matcher) match(p *Pattern, v *ir.Value, k func() bool) bool {
	if p.absent {
		return v == nil && k()
	}
	if v == nil || p.Op != "" && v.Op != p.Op {
		return false
	}
	fresh := false
	if p.Name != "" {
		if w, ok := m.bind[p.Name]; ok {
			if w != v {
				return false
			}
		} else {
			m.bind[p.Name] = v
			fresh = true
		}
	}
	m.nodes = append(m.nodes, bound{p, v})
	n := len(m.nodes)
	var ok bool
	if p.Op == "" {
		ok = k()
	} else {
		args := v.Args()
		for len(args) > 0 && args[len(args)-1] == nil {
			args = args[:len(args)-1]
		}
		ok = m.args(p, args, k)
		if def := ir.LookupOp(v.Op); !ok && len(args) >= 2 && len(p.Args) >= 2 && def != nil && def.Commutative {
			swapped := append([]*ir.Value{args[1], args[0]}, args[2:]...)
			ok = m.args(p, swapped, k)
		}
	}
	if !ok {
		m.nodes = m.nodes[:n-1]
		if fresh {
			delete(m.bind, p.Name)
		}
	}
	return ok
}

// args matches p's argument patterns against args, left to right.
func (m *matcher) args(p *Pattern, args []*ir.Value, k func() bool) bool {
	if len(args) > len(p.Args) && !p.Rest {
		return false
	}
	var step func(i int) bool
	step = func(i int) bool {
		if i == len(p.Args) {
			return k()
		}
		var a *ir.Value
		if i < len(args) {
			a = args[i]
		}
		return m.match(p.Args[i], a, func() bool { return step(i + 1) })
	}
	return step(0)
}
