package sweep

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestFrontierCases(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name      string
		acc, cost []float64
		want      []bool
	}{
		{"single", []float64{80}, []float64{1}, []bool{true}},
		{"dominated", []float64{80, 90}, []float64{2, 1}, []bool{false, true}},
		{"trade-off", []float64{80, 90, 85}, []float64{1, 3, 2}, []bool{true, true, true}},
		{"middle dominated", []float64{80, 90, 84}, []float64{1, 3, 3}, []bool{true, true, false}},
		// Equal in both: neither is strictly better, both stay.
		{"tie", []float64{88, 88}, []float64{1, 1}, []bool{true, true}},
		// Equal accuracy, cheaper wins; equal cost, more accurate wins.
		{"equal accuracy", []float64{88, 88}, []float64{1, 2}, []bool{true, false}},
		{"equal cost", []float64{87, 88}, []float64{1, 1}, []bool{false, true}},
		// A missing figure is never on the frontier and dominates nothing.
		{"nan", []float64{nan, 80, 99}, []float64{0.1, 1, nan}, []bool{false, true, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Frontier(tc.acc, tc.cost); !slices.Equal(got, tc.want) {
				t.Errorf("Frontier(%v, %v) = %v, want %v", tc.acc, tc.cost, got, tc.want)
			}
		})
	}
}

// TestFrontierSweepLine checks Frontier against a different algorithm: sort
// by cost (ties: higher accuracy first) and keep each point that beats the
// best accuracy seen so far, or ties a kept point exactly.
func TestFrontierSweepLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 200 {
		n := 1 + rng.IntN(30)
		acc, cost := make([]float64, n), make([]float64, n)
		for i := range n {
			// Few distinct values, so ties are common.
			acc[i], cost[i] = float64(rng.IntN(8)), float64(rng.IntN(8))
		}
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(a, b int) int {
			if cost[a] != cost[b] {
				return int(cost[a] - cost[b])
			}
			return int(acc[b] - acc[a])
		})
		want := make([]bool, n)
		best, bestCost := math.Inf(-1), math.NaN()
		for _, i := range idx {
			switch {
			case acc[i] > best:
				want[i], best, bestCost = true, acc[i], cost[i]
			case acc[i] == best && cost[i] == bestCost:
				want[i] = true
			}
		}
		got := Frontier(acc, cost)
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d: acc %v cost %v: Frontier %v, sweep line %v", trial, acc, cost, got, want)
		}
		order := FrontierOrder(acc, cost, got)
		for k := 1; k < len(order); k++ {
			a, b := order[k-1], order[k]
			if cost[a] > cost[b] || cost[a] < cost[b] && acc[a] >= acc[b] {
				t.Fatalf("trial %d: frontier order %v not increasing in cost and accuracy", trial, order)
			}
		}
	}
}

func TestMarkFrontiersSkipsFailures(t *testing.T) {
	a := func(x float64) *float64 { return &x }
	rs := []*Result{
		{ID: "a", AccuracyPct: a(80), RuntimeMs: 1, FileBytes: 100},
		{ID: "b", AccuracyPct: a(90), RuntimeMs: 2, FileBytes: 50},
		{ID: "c", AccuracyPct: a(99), RuntimeMs: 0.5, FileBytes: 10, Error: "boom"},
		{ID: "d", AccuracyPct: a(70), RuntimeMs: 3, FileBytes: 60},
	}
	MarkFrontiers(rs)
	var lat, size []string
	for _, r := range rs {
		if r.ParetoLatency {
			lat = append(lat, r.ID)
		}
		if r.ParetoSize {
			size = append(size, r.ID)
		}
	}
	if !slices.Equal(lat, []string{"a", "b"}) || !slices.Equal(size, []string{"b"}) {
		t.Errorf("latency frontier %v (want [a b]), size frontier %v (want [b])", lat, size)
	}
}

func TestUseORT(t *testing.T) {
	if UseORT([]*Result{{ORTMs: 1}, {ORTMs: 0}}) {
		t.Error("UseORT with a point lacking ORT latency")
	}
	if !UseORT([]*Result{{ORTMs: 1}, {ORTMs: 0, Error: "failed"}}) {
		t.Error("UseORT should ignore failed points")
	}
	if UseORT(nil) {
		t.Error("UseORT(nil)")
	}
}
