package prune

import (
	"fmt"
	passimp "github.com/pqvc/pqvc/passes/importance"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes"
)

const pruneDoc = `prune: structured pruning of heads, head dims, MLP channels or embedding channels
Removes the lowest-scoring units of one kind (heads, head_dim, mlp, embed),
or of several at once (channels = embed + head_dim + mlp, Torch-Pruning's
default channel pruning of a ViT; all = channels + heads), and rewrites every
dependent weight, bias, LayerNorm parameter, token, position embedding,
patch-embedding Conv, classifier and Reshape/Slice/Expand constant, so the
result verifies and runs with no hand edits (num_heads and head_dim are
wherever the exporter put them, and the analysis finds them).

ratio is the fraction of each group removed: floor(ratio·n) units, then
the kept count is rounded up to a multiple of round_to (channels only, not
heads). scope=local ranks units within each block; global ranks one kind's
units across all blocks after dividing each block's scores by their mean;
isomorphic ranks raw scores across blocks of the same width. head_dim
removes the same dims from every head of a block, ranked by their summed
score, so the fused [3, heads, head_dim] layouts stay rectangular; it and
embed are always ranked locally. Nothing removes a block's last head. The
attention scale (1/sqrt(head_dim)) is left as trained: changing it would
change what the remaining dims compute.

ratios gives groups their own ratio, as "GLOB=RATIO" strings on group
names (block0.heads, block0.head_dim, block0.mlp, embed): the first
pattern that matches wins and other groups use ratio. Groups whose ratio
is 0 are left alone, and with ratio=0 a kind none of whose groups is named
is skipped, so prune all ratios=["block2.mlp=25%", "block3.heads=50%"]
removes exactly those units in one step (one step, so the importance
scores computed on the unpruned graph rank every group). ratios needs
scope=local.

reconstruct=true (needs calibration data) then re-fits each pruned
block's output projection by ridge least squares so it reproduces the
unpruned projection's output on calib_images images.

Requires: a canonical graph (run canonicalize first). Establishes: weights
and shape constants agree; graph inputs and outputs keep their shapes.
Fails, naming the block, when the ratio would remove a block's last head or
every channel of a group.`

// Options configure prune.
type Options struct {
	Unit    string   `pqv:"unit,positional" enum:"channels|heads|head_dim|mlp|embed|all" doc:"what to remove"`
	Ratio   float64  `pqv:"ratio" min:"0" max:"1" doc:"fraction of each group's units to remove"`
	Scope   string   `pqv:"scope" enum:"local|global|isomorphic" doc:"which units are ranked against each other"`
	RoundTo int      `pqv:"round_to" min:"1" doc:"keep a multiple of this many units per group"`
	Ignore  []string `pqv:"ignore" doc:"glob patterns on group and weight names to leave alone"`
	// Ratios gives groups their own ratio: "PATTERN=RATIO" entries, the
	// first whose glob matches a group's name wins; other groups use Ratio.
	Ratios    []string `pqv:"ratios" doc:"per-group ratios, \"GLOB=RATIO\" on group names (block2.mlp=25%); first match wins, others use ratio"`
	Criterion string   `pqv:"criterion" enum:"magnitude|l1" doc:"how units are scored when no importance scores are given"`
	// Reconstruct re-fits each pruned block's output projection (attention
	// proj, MLP fc2) by least squares on calibration images so it
	// reproduces the unpruned block's output.
	Reconstruct bool    `pqv:"reconstruct" doc:"re-fit pruned blocks' output projections on calibration data"`
	CalibImages int     `pqv:"calib_images" min:"1" doc:"calibration images for reconstruct"`
	Ridge       float64 `pqv:"ridge" min:"0" doc:"reconstruct's ridge, relative to the mean input energy"`
}

// Defaults are prune's defaults.
var Defaults = Options{Unit: "channels", Scope: "local", RoundTo: 1, Criterion: "magnitude", CalibImages: 64, Ridge: 1e-3}

// Scorer scores the units of groups (one slice per group, one score per
// unit; lower is pruned first). The importance package plugs in here.
type Scorer func(groups []Group) ([][]float64, error)

// Stats is what prune reports.
type Stats struct {
	ParamsBefore int64            `json:"params_before"`
	ParamsAfter  int64            `json:"params_after"`
	Removed      map[string]int   `json:"removed"` // units removed per group
	Pruned       map[string][]int `json:"pruned"`  // which units, per group
	// Scores are the importance of every unit, per group, as ranked: the
	// importance analysis's or magnitude (report.json carries them).
	Scores    map[string][]float64 `json:"scores"`
	Widths    map[string][]int     `json:"widths"`  // kind → [before, after] of the first group
	Groups    int                  `json:"groups"`  // groups considered
	Ignored   []string             `json:"ignored"` // groups left alone by ignore
	Criterion string               `json:"criterion"`
	// Reconstruct holds each re-fitted projection's relative output error
	// before and after its fit.
	Reconstruct map[string][2]float64 `json:"reconstruct,omitempty"`

	consumers []*ir.Value // output projections of pruned blocks, in order
	embed     bool        // embedding channels were pruned
}

func init() {
	opts := Defaults
	passes.Register(&passes.Pass{
		Name:    "prune",
		Doc:     pruneDoc,
		Options: &opts,
		Run: func(ctx *passes.Context, g *ir.Graph) (any, error) {
			opts := *ctx.Options.(*Options)
			// Use the importance analysis when the recipe ran it on this
			// graph; otherwise rank by weight magnitude (opts.Criterion).
			var scorer Scorer
			if r, ok := ctx.Available[passimp.Pass].(*passimp.Result); ok {
				scorer = ImportanceScorer(r)
				ctx.Logf("prune: ranking by %s importance", r.Criterion.Method)
			}
			if !opts.Reconstruct {
				return Prune(g, opts, scorer)
			}
			if ctx.Calib == nil {
				return nil, fmt.Errorf("prune: reconstruct needs calibration data (calib in the recipe)")
			}
			orig := g.Clone()
			st, err := Prune(g, opts, scorer)
			if err != nil {
				return nil, err
			}
			n := min(opts.CalibImages, ctx.Calib.Len())
			x, err := ctx.Calib.Samples(0, n)
			if err != nil {
				return nil, err
			}
			if err := st.reconstruct(orig, g, x, opts.Ridge); err != nil {
				return nil, err
			}
			return st, nil
		},
	})
}

// kinds expands the unit option.
func kinds(unit string) []string {
	switch unit {
	case "channels", "":
		return []string{KindEmbed, KindHeadDim, KindMLP}
	case "all":
		return []string{KindEmbed, KindHeadDim, KindMLP, KindHeads}
	}
	return []string{unit}
}

// Prune analyses g and removes units as opts say, scoring them with score
// (nil: the magnitude criterion named by opts).
func Prune(g *ir.Graph, opts Options, score Scorer) (*Stats, error) {
	if opts.RoundTo < 1 {
		opts.RoundTo = 1
	}
	if score == nil {
		l1 := opts.Criterion == "l1"
		score = func(gs []Group) ([][]float64, error) { return Magnitude(gs, l1) }
	}
	perGroup, err := parseRatios(opts.Ratios)
	if err != nil {
		return nil, err
	}
	if len(perGroup) > 0 && opts.Scope != "local" && opts.Scope != "" {
		return nil, fmt.Errorf("prune: ratios needs scope=local, not %s (per-group ratios rank each group alone)", opts.Scope)
	}
	// With per-group ratios and ratio 0, only the named groups are pruned:
	// a kind the graph lacks (embed in a model whose analysis could not
	// find it) is then no error.
	onlyNamed := len(perGroup) > 0 && opts.Ratio == 0
	st, err := Analyze(g)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	stats := &Stats{ParamsBefore: ir.ComputeStats(g).Params, Removed: map[string]int{}, Pruned: map[string][]int{}, Widths: map[string][]int{}, Criterion: opts.Criterion}
	p := newPlan()
	var labs []*labeling
	for _, kind := range kinds(opts.Unit) {
		groups, err := st.Groups(kind)
		if onlyNamed && (err != nil || len(groups) == 0) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("prune %s: %w", kind, err)
		}
		if len(groups) == 0 {
			return nil, fmt.Errorf("prune %s: the graph has no %s to prune", kind, kind)
		}
		var use []Group
		var idx []int
		var ratios []float64
		for i, grp := range groups {
			if ignored(grp, opts.Ignore) {
				stats.Ignored = append(stats.Ignored, grp.Name)
				continue
			}
			r := perGroup.ratio(grp.Name, opts.Ratio)
			if r == 0 && len(perGroup) > 0 {
				continue // nothing to remove: not analysed, scored or rewritten
			}
			use, idx, ratios = append(use, grp), append(idx, i), append(ratios, r)
		}
		stats.Groups += len(use)
		if len(use) == 0 {
			continue
		}
		scores, err := score(use)
		if err != nil {
			return nil, fmt.Errorf("prune %s: scoring: %w", kind, err)
		}
		if len(scores) != len(use) {
			return nil, fmt.Errorf("prune %s: scorer returned %d score lists for %d groups", kind, len(scores), len(use))
		}
		if stats.Scores == nil {
			stats.Scores = map[string][]float64{}
		}
		for k, grp := range use {
			stats.Scores[grp.Name] = scores[k]
		}
		scope := opts.Scope
		if kind == KindHeadDim || kind == KindEmbed {
			scope = "local" // one group per block (or one in all): nothing to compare across
		}
		roundTo := opts.RoundTo
		if kind == KindHeads {
			roundTo = 1 // round_to is about channel counts, not head counts
		}
		var removed []map[int]bool
		if len(perGroup) > 0 {
			removed, err = chooseEach(kind, use, scores, ratios, roundTo)
		} else {
			removed, err = choose(kind, use, scores, opts.Ratio, roundTo, scope)
		}
		if err != nil {
			return nil, fmt.Errorf("prune %s: %w", kind, err)
		}
		for k, grp := range use {
			role, lab := st.roleOf(kind, idx[k])
			n := len(grp.Units)
			var kept []int
			for c := range n {
				if !removed[k][c] {
					kept = append(kept, c)
				} else {
					stats.Pruned[grp.Name] = append(stats.Pruned[grp.Name], c)
				}
			}
			p.add(role, kept)
			if len(kept) < n {
				switch kind {
				case KindEmbed:
					stats.embed = true
				case KindMLP:
					stats.consumers = append(stats.consumers, st.MLPs[idx[k]].FC2Op)
				default:
					stats.consumers = append(stats.consumers, st.Attention[idx[k]].ProjOp)
				}
			}
			labs = append(labs, lab)
			stats.Removed[grp.Name] = n - len(kept)
			if _, ok := stats.Widths[kind]; !ok {
				stats.Widths[kind] = []int{n, len(kept)}
			}
		}
	}
	if err := apply(g, labs, p); err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	stats.ParamsAfter = ir.ComputeStats(g).Params
	return stats, nil
}

// roleOf returns the role and labeling of group i of a kind.
func (st *Structure) roleOf(kind string, i int) (string, *labeling) {
	switch kind {
	case KindHeads:
		return st.Attention[i].HRole, st.Attention[i].labels
	case KindHeadDim:
		return st.Attention[i].DRole, st.Attention[i].labels
	case KindMLP:
		return st.MLPs[i].Role, st.MLPs[i].labels
	}
	return st.Embed.Role, st.Embed.labels
}

// ignored reports whether a pattern matches the group's name or the name
// of any weight it touches.
func ignored(grp Group, patterns []string) bool {
	if len(patterns) == 0 {
		return false
	}
	names := []string{grp.Name}
	seen := map[*ir.Value]bool{}
	for _, u := range grp.Units {
		for _, s := range u.Slices {
			if !seen[s.W] {
				seen[s.W] = true
				names = append(names, s.W.Name)
			}
		}
		break // every unit touches the same weights
	}
	for _, pat := range patterns {
		for _, n := range names {
			if ok, _ := path.Match(pat, n); ok {
				return true
			}
		}
	}
	return false
}

// count is how many of n units a ratio removes: floor(ratio·n), then the
// kept count rounded up to a multiple of roundTo (Torch-Pruning's rule).
func count(n int, ratio float64, roundTo int) int {
	drop := int(math.Floor(ratio*float64(n) + 1e-9))
	keep := n - drop
	if roundTo > 1 && keep%roundTo != 0 {
		keep += roundTo - keep%roundTo
	}
	return n - min(keep, n)
}

// choose picks the units to remove: removed[group][unit].
func choose(kind string, groups []Group, scores [][]float64, ratio float64, roundTo int, scope string) ([]map[int]bool, error) {
	removed := make([]map[int]bool, len(groups))
	for i := range removed {
		removed[i] = map[int]bool{}
	}
	noun := map[string]string{KindHeads: "head", KindHeadDim: "head dim", KindMLP: "MLP channel", KindEmbed: "embedding channel"}[kind]
	if scope == "local" {
		for i, grp := range groups {
			n := len(grp.Units)
			if len(scores[i]) != n {
				return nil, fmt.Errorf("%s: %d scores for %d units", grp.Name, len(scores[i]), n)
			}
			k := count(n, ratio, roundTo)
			if k >= n {
				return nil, fmt.Errorf("%s: ratio %g would remove every %s (%d of %d); at least one must stay", grp.Name, ratio, noun, k, n)
			}
			for _, j := range lowest(scores[i], k) {
				removed[i][j] = true
			}
		}
		return removed, nil
	}
	// global / isomorphic: rank units of comparable groups together.
	classes := map[string][]int{}
	for i, grp := range groups {
		key := "all"
		if scope == "isomorphic" {
			key = fmt.Sprint(len(grp.Units))
		}
		classes[key] = append(classes[key], i)
	}
	keys := make([]string, 0, len(classes))
	for k := range classes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		type cand struct {
			g, u int
			s    float64
		}
		var cs []cand
		total := 0
		for _, i := range classes[key] {
			total += len(groups[i].Units)
			// global compares blocks of different scale: divide by each
			// group's mean score (Torch-Pruning's mean normaliser), or a
			// block with small weights loses all but one unit.
			norm := 1.0
			if scope == "global" {
				sum := 0.0
				for _, s := range scores[i] {
					sum += s
				}
				if sum > 0 {
					norm = sum / float64(len(scores[i]))
				}
			}
			for j, s := range scores[i] {
				cs = append(cs, cand{i, j, s / norm})
			}
		}
		k := count(total, ratio, 1)
		sort.SliceStable(cs, func(a, b int) bool { return cs[a].s < cs[b].s })
		left := map[int]int{}
		for _, i := range classes[key] {
			left[i] = len(groups[i].Units)
		}
		for _, c := range cs {
			if k == 0 {
				break
			}
			if left[c.g] == 1 {
				continue // never a group's last unit
			}
			removed[c.g][c.u] = true
			left[c.g]--
			k--
		}
		if k > 0 {
			var names []string
			for _, i := range classes[key] {
				names = append(names, groups[i].Name)
			}
			return nil, fmt.Errorf("ratio %g would remove every %s of some of %s", ratio, noun, strings.Join(names, ", "))
		}
	}
	return removed, nil
}

// groupRatio is one "GLOB=RATIO" entry of the ratios option.
type groupRatio struct {
	pattern string
	ratio   float64
}

type groupRatios []groupRatio

// parseRatios reads the ratios option: "GLOB=RATIO" with RATIO a fraction
// (0.25) or a percentage (25%), in [0, 1).
func parseRatios(entries []string) (groupRatios, error) {
	var out groupRatios
	for _, e := range entries {
		pat, val, ok := strings.Cut(e, "=")
		pat, val = strings.TrimSpace(pat), strings.TrimSpace(val)
		if !ok || pat == "" || val == "" {
			return nil, fmt.Errorf("prune: ratios entry %q: want GLOB=RATIO, like block2.mlp=25%%", e)
		}
		if _, err := path.Match(pat, ""); err != nil {
			return nil, fmt.Errorf("prune: ratios entry %q: bad pattern: %w", e, err)
		}
		scale := 1.0
		if v, pct := strings.CutSuffix(val, "%"); pct {
			val, scale = v, 0.01
		}
		r, err := strconv.ParseFloat(val, 64)
		if err != nil || math.IsNaN(r) {
			return nil, fmt.Errorf("prune: ratios entry %q: %q is not a number", e, val)
		}
		r *= scale
		if r < 0 || r >= 1 {
			return nil, fmt.Errorf("prune: ratios entry %q: ratio must be in [0, 1), have %g", e, r)
		}
		out = append(out, groupRatio{pat, r})
	}
	return out, nil
}

// ratio is the ratio of the first entry matching name, else def.
func (rs groupRatios) ratio(name string, def float64) float64 {
	for _, r := range rs {
		if ok, _ := path.Match(r.pattern, name); ok {
			return r.ratio
		}
	}
	return def
}

// chooseEach is choose with scope local and one ratio per group.
func chooseEach(kind string, groups []Group, scores [][]float64, ratios []float64, roundTo int) ([]map[int]bool, error) {
	removed := make([]map[int]bool, len(groups))
	for i := range groups {
		r, err := choose(kind, groups[i:i+1], scores[i:i+1], ratios[i], roundTo, "local")
		if err != nil {
			return nil, err
		}
		removed[i] = r[0]
	}
	return removed, nil
}

// lowest returns the indices of the k lowest scores (ties: lower index).
func lowest(s []float64, k int) []int {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] < s[idx[b]] })
	out := slices.Clone(idx[:k])
	slices.Sort(out)
	return out
}

// reconstruct runs Reconstruct over the blocks pruning changed.
func (s *Stats) reconstruct(orig, g *ir.Graph, x *ir.Tensor, ridge float64) error {
	if s.embed {
		return fmt.Errorf("prune: reconstruct cannot follow embedding pruning (the targets' width changed)")
	}
	order, err := g.Topo()
	if err != nil {
		return err
	}
	pos := map[*ir.Value]int{}
	for i, v := range order {
		pos[v] = i
	}
	cs := slices.Clone(s.consumers)
	slices.SortFunc(cs, func(a, b *ir.Value) int { return pos[a] - pos[b] })
	cs = slices.Compact(cs)
	errs, err := Reconstruct(orig, g, cs, x, ridge)
	if err != nil {
		return err
	}
	s.Reconstruct = map[string][2]float64{}
	for i, c := range cs {
		s.Reconstruct[c.Name] = errs[i]
	}
	s.ParamsAfter = ir.ComputeStats(g).Params
	return nil
}

// ReconstructAfter is the reconstruct option for callers of Prune: orig is
// a clone of the graph taken before Prune, x the calibration images.
func (s *Stats) ReconstructAfter(orig, g *ir.Graph, x *ir.Tensor, ridge float64) error {
	return s.reconstruct(orig, g, x, ridge)
}
