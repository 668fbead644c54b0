package prune

import (
	imp "github.com/pqvc/pqvc/importance"
	passimp "github.com/pqvc/pqvc/passes/importance"
)

// ImportanceScorer ranks units with the importance analysis's result (any
// of its criteria) instead of prune's built-in magnitude. The prune pass
// does not require the analysis (that would force Taylor scoring and
// calibration data on every recipe); a driver that has the result passes
// this to Prune.
func ImportanceScorer(r *passimp.Result) Scorer {
	return func(groups []Group) ([][]float64, error) {
		return r.Score(ToImportance(groups))
	}
}

// ToImportance converts groups field by field to the importance package's
// types.
func ToImportance(groups []Group) []imp.Group {
	out := make([]imp.Group, len(groups))
	for i, g := range groups {
		out[i] = imp.Group{Name: g.Name, Units: make([]imp.Unit, len(g.Units))}
		for j, u := range g.Units {
			ss := make([]imp.Slice, len(u.Slices))
			for k, s := range u.Slices {
				ss[k] = imp.Slice{W: s.W, Axis: s.Axis, Index: s.Index}
			}
			out[i].Units[j] = imp.Unit{Name: u.Name, Slices: ss}
		}
	}
	return out
}
