package sweep

import (
	"math"
	"sort"
)

// Frontier reports which points are on the Pareto frontier when accuracy
// is maximised and cost minimised: a point is on it when no other point is
// at least as good in both and strictly better in one. Points whose
// accuracy or cost is NaN are never on it and dominate nothing. Two points
// with equal accuracy and cost are both on it (neither is better).
func Frontier(acc, cost []float64) []bool {
	on := make([]bool, len(acc))
	for i := range acc {
		if math.IsNaN(acc[i]) || math.IsNaN(cost[i]) {
			continue
		}
		on[i] = true
		for j := range acc {
			if j == i || math.IsNaN(acc[j]) || math.IsNaN(cost[j]) {
				continue
			}
			if acc[j] >= acc[i] && cost[j] <= cost[i] && (acc[j] > acc[i] || cost[j] < cost[i]) {
				on[i] = false
				break
			}
		}
	}
	return on
}

// FrontierOrder returns the indices of the frontier points sorted by
// increasing cost (ties by decreasing accuracy): the order in which a
// frontier line connects them.
func FrontierOrder(acc, cost []float64, on []bool) []int {
	var idx []int
	for i, o := range on {
		if o {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool {
		i, j := idx[a], idx[b]
		if cost[i] != cost[j] {
			return cost[i] < cost[j]
		}
		return acc[i] > acc[j]
	})
	return idx
}

// UseORT reports whether every successful result has an ONNX Runtime
// latency, in which case plots and frontiers use it: ORT is what a model
// ships on. Otherwise they use pqvc's runtime.
func UseORT(rs []*Result) bool {
	any := false
	for _, r := range rs {
		if r.Error != "" {
			continue
		}
		if r.ORTMs <= 0 {
			return false
		}
		any = true
	}
	return any
}

// axes returns accuracy, latency and size per result, NaN where a figure is
// missing (a failed point, no eval data, no timing).
func axes(rs []*Result) (acc, lat, size []float64) {
	useORT := UseORT(rs)
	for _, r := range rs {
		a, l, s := math.NaN(), math.NaN(), math.NaN()
		if r.Error == "" {
			if r.AccuracyPct != nil {
				a = *r.AccuracyPct
			}
			if v := r.Latency(useORT); v > 0 {
				l = v
			}
			if r.FileBytes > 0 {
				s = float64(r.FileBytes)
			}
		}
		acc, lat, size = append(acc, a), append(lat, l), append(size, s)
	}
	return acc, lat, size
}

// MarkFrontiers sets ParetoLatency and ParetoSize on every result.
func MarkFrontiers(rs []*Result) {
	acc, lat, size := axes(rs)
	onLat, onSize := Frontier(acc, lat), Frontier(acc, size)
	for i, r := range rs {
		r.ParetoLatency, r.ParetoSize = onLat[i], onSize[i]
	}
}
