package grad

import (
	"math/rand"
	"slices"
	"testing"

	"github.com/pqvc/pqvc/internal/testmodels"
	"github.com/pqvc/pqvc/ir"
)

// TestCheckpointSame: recomputing segments in the backward pass gives the
// same gradients, bit for bit, as keeping every activation; and sweeping
// the weights in chunks with With gives each chunk's gradients unchanged.
// Both DeiT exporter styles, so segment cuts land inside attention, the
// residual stream and LayerNorm decompositions.
func TestCheckpointSame(t *testing.T) {
	for _, s := range []testmodels.Spec{deitTiny, deitTinyUnbind} {
		t.Run(s.Name(), func(t *testing.T) {
			g := loadModel(t, testmodels.Require(t, s))
			rng := rand.New(rand.NewSource(3))
			in := map[string]*ir.Tensor{g.Inputs[0].Name: randInput(rng, 2, 3, 224, 224)}
			loss := Loss{Kind: "ce", Labels: []int64{7, 901}}
			full, err := Gradients(g, in, loss, Options{})
			if err != nil {
				t.Fatal(err)
			}
			e, err := NewEngine(g, Options{Checkpoint: true, NoPackCache: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(e.segs) < 10 || len(e.keep) == 0 {
				t.Fatalf("checkpointing planned %d segments and %d kept values; want many segments on DeiT", len(e.segs)-1, len(e.keep))
			}
			steps := 0
			for _, v := range e.order {
				if !v.IsConst() && v.Op != ir.OpInput {
					steps++
				}
			}
			if len(e.keep) > steps/4 {
				t.Errorf("forward keeps %d of %d values; checkpointing should keep few", len(e.keep), steps)
			}
			ck, err := e.Gradients(in, loss)
			if err != nil {
				t.Fatal(err)
			}
			if ck.Loss != full.Loss {
				t.Errorf("loss %v with checkpointing, %v without", ck.Loss, full.Loss)
			}
			same(t, "checkpointed", full.Grads, ck.Grads, e.Wrt())

			// Latest weights first, as importance sweeps them.
			wrt := slices.Clone(e.Wrt())
			slices.Reverse(wrt)
			for _, chunk := range [][]*ir.Value{wrt[:5], wrt[5 : len(wrt)/2], wrt[len(wrt)/2:]} {
				c, err := e.With(chunk)
				if err != nil {
					t.Fatal(err)
				}
				acc := &Result{Grads: map[*ir.Value]*ir.Tensor{}}
				if err := c.AddTo(acc, in, loss); err != nil {
					t.Fatal(err)
				}
				if acc.Samples != 2 || len(acc.Grads) != len(chunk) {
					t.Fatalf("chunk: %d samples, %d gradients; want 2 and %d", acc.Samples, len(acc.Grads), len(chunk))
				}
				for _, w := range chunk {
					want, got := full.Grads[w].F32(), acc.Grads[w].F32()
					for j := range want {
						if got[j] != 2*want[j] {
							t.Fatalf("chunk %s[%d]: AddTo %v, want 2×%v (sum over the batch)", w, j, got[j], want[j])
						}
					}
				}
			}
		})
	}
}

func same(t *testing.T, what string, want, got map[*ir.Value]*ir.Tensor, wrt []*ir.Value) {
	t.Helper()
	for _, w := range wrt {
		a, b := want[w].F32(), got[w].F32()
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("%s gradient of %s[%d] = %v, want %v", what, w, j, b[j], a[j])
			}
		}
	}
}
