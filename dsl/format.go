package dsl

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/passes"
)

// Pipeline returns the recipe's steps for passes.Run. Step positions are
// "file:line:col", so a failing pass points back into the recipe.
func (r *Recipe) Pipeline() *passes.Pipeline {
	pl := &passes.Pipeline{Steps: make([]passes.Step, 0, len(r.Steps))}
	for _, s := range r.Steps {
		pl.Steps = append(pl.Steps, passes.Step{Pass: s.Pass, Options: s.Options, Pos: s.Pos.String()})
	}
	return pl
}

// Format returns r in canonical form: inputs, then steps in order, then
// outputs, each group separated by a blank line; one space between words;
// strings quoted by strconv.Quote; pass options as passes.FormatOptions
// prints them (positional value, then non-default name=value in
// declaration order); emit options sorted by name; comments dropped.
// Parsing the result gives a recipe that formats identically.
func Format(r *Recipe) string {
	var groups [][]string
	var in []string
	for _, f := range []struct{ word, path string }{
		{"model", r.Model}, {"calibrate_with", r.Calib}, {"evaluate_with", r.Eval},
	} {
		if f.path != "" {
			in = append(in, f.word+" "+strconv.Quote(f.path))
		}
	}
	groups = append(groups, in)
	var steps []string
	for _, s := range r.Steps {
		steps = append(steps, formatStep(s))
	}
	groups = append(groups, steps)
	var out []string
	for _, e := range r.Emits {
		out = append(out, formatEmit(e))
	}
	if r.Report != "" {
		out = append(out, "report "+strconv.Quote(r.Report))
	}
	groups = append(groups, out)

	var b strings.Builder
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('\n')
		}
		for _, line := range g {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func formatStep(s Step) string {
	words := []string{s.Pass.Name}
	positional, named := passes.FormatOptions(s.Pass, s.Options)
	if positional != "" {
		words = append(words, positional)
	}
	words = append(words, named...)
	return strings.Join(words, " ")
}

func formatEmit(e Emit) string {
	words := []string{"emit", e.Format, strconv.Quote(e.Path)}
	opts := append([]Option(nil), e.Options...)
	sort.SliceStable(opts, func(i, j int) bool { return opts[i].Name < opts[j].Name })
	for _, o := range opts {
		words = append(words, o.Name+"="+canonicalLit(o.Value).String())
	}
	return strings.Join(words, " ")
}

// canonicalLit spells numbers the way passes.FormatOptions does (1.50 →
// 1.5, +7 → 7, 2. → 2.0), keeping their kind; a number too large to parse
// stays as written.
func canonicalLit(l passes.Literal) passes.Literal {
	switch l.Kind {
	case passes.LitInt:
		if n, err := strconv.ParseInt(l.Text, 10, 64); err == nil {
			l.Text = strconv.FormatInt(n, 10)
		}
	case passes.LitFloat, passes.LitPercent:
		if x, err := strconv.ParseFloat(l.Text, 64); err == nil {
			t := strconv.FormatFloat(x, 'g', -1, 64)
			if l.Kind == passes.LitFloat && !strings.ContainsAny(t, ".eE") {
				t += ".0"
			}
			l.Text = t
		}
	case passes.LitList:
		items := make([]passes.Literal, len(l.Items))
		for i, it := range l.Items {
			items[i] = canonicalLit(it)
		}
		l.Items = items
	}
	return l
}
