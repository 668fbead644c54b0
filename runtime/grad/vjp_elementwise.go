package grad

import (
	"errors"
	"fmt"
	"math"

	"github.com/pqvc/pqvc/ir"
)

// vctx is one VJP application: the value, its arguments' forward tensors
// (nil for omitted ones), its own forward tensor, the incoming gradient g
// (shaped like out) and which arguments need a gradient. A VJP fills res[i]
// for needed arguments, shaped like args[i]. At most one res entry may
// alias g (g is dropped afterwards); the others must be fresh, because the
// backward pass accumulates into them in place.
type vctx struct {
	v    *ir.Value
	args []*ir.Tensor
	out  *ir.Tensor
	g    []float32
	need []bool
	res  [][]float32
}

type vjpFunc func(c *vctx) error

var vjpTable = map[string]vjpFunc{}

func init() {
	for _, op := range []string{"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"} {
		vjpTable[op] = vjpBinary
	}
	for _, op := range []string{"Sqrt", "Erf", "Relu", "Neg", "Exp", "Log", "Tanh", "Sigmoid", "Abs", "Reciprocal",
		"Gelu", "LeakyRelu", "HardSigmoid", "Sin", "Cos"} {
		vjpTable[op] = vjpUnary
	}
	for _, op := range []string{"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"} {
		vjpTable[op] = vjpPassThrough
	}
	vjpTable["Cast"] = vjpCast
	vjpTable["Where"] = vjpWhere
	vjpTable["Clip"] = vjpClip
}

// f32Of returns the data of an f32 operand, or an error naming its dtype.
func f32Of(t *ir.Tensor, what string) ([]float32, error) {
	if t == nil || t.DType != ir.F32 {
		return nil, fmt.Errorf("%s is not f32", what)
	}
	return t.F32(), nil
}

// vjpPassThrough covers ops that only relabel the shape: the data layout is
// unchanged, so the gradient is the incoming one.
func vjpPassThrough(c *vctx) error {
	c.res[0] = c.g
	return nil
}

func vjpCast(c *vctx) error {
	if c.args[0].DType != ir.F32 || c.out.DType != ir.F32 {
		return fmt.Errorf("gradient through Cast %v→%v is not supported", c.args[0].DType, c.out.DType)
	}
	c.res[0] = c.g
	return nil
}

// vjpBinary handles the broadcasting arithmetic ops: it forms the local
// gradient at the broadcast shape, then sums it back onto each operand.
func vjpBinary(c *vctx) error {
	a, b, out := c.args[0], c.args[1], c.out.Shape
	af, err := f32Of(a, "first operand")
	if err != nil {
		return err
	}
	var bf []float32
	if b.DType == ir.F32 {
		bf = b.F32()
	} else if c.v.Op == "Pow" {
		x, err := b.AsFloat64s()
		if err != nil {
			return err
		}
		bf = make([]float32, len(x))
		for i, y := range x {
			bf[i] = float32(y)
		}
	} else {
		return fmt.Errorf("second operand is %v", b.DType)
	}
	if c.v.Op == "Pow" && c.need[1] {
		return errors.New("gradient with respect to a Pow exponent is not supported")
	}
	y, g := c.out.F32(), c.g
	op := c.v.Op
	if op == "Add" || op == "Sub" {
		// The local gradient is ±1: reduce g directly. An operand the
		// size of the output may take g itself (see vctx), saving a copy
		// on every residual connection.
		if c.need[0] {
			if len(g) == a.Len() {
				c.res[0] = g
			} else {
				c.res[0] = reduceTo(g, out, a.Shape)
			}
		}
		if c.need[1] {
			var gb []float32
			if len(g) == b.Len() && !c.need[0] && op == "Add" {
				gb = g
			} else {
				gb = reduceTo(g, out, b.Shape)
			}
			if op == "Sub" {
				for i := range gb {
					gb[i] = -gb[i]
				}
			}
			c.res[1] = gb
		}
		return nil
	}
	var ga, gb []float32
	if c.need[0] {
		ga = make([]float32, len(g))
	}
	if c.need[1] {
		gb = make([]float32, len(g))
	}
	stA, stB := bstrides(a.Shape, out), bstrides(b.Shape, out)
	inner, sa, sb := rowLen(out), lastStride(stA), lastStride(stB)
	// Rows of the broadcast shape are independent; within a row each
	// operand advances by 0 or 1, so the loops below stay tight.
	forEachRow(out, [][]int{stA, stB}, true, func(r int, o []int) {
		base, oa, ob := r*inner, o[0], o[1]
		gr := g[base : base+inner]
		switch op {
		case "Mul":
			if ga != nil {
				for j, gi := range gr {
					ga[base+j] = gi * bf[ob+j*sb]
				}
			}
			if gb != nil {
				for j, gi := range gr {
					gb[base+j] = gi * af[oa+j*sa]
				}
			}
		case "Div":
			if ga != nil {
				for j, gi := range gr {
					ga[base+j] = gi / bf[ob+j*sb]
				}
			}
			if gb != nil {
				for j, gi := range gr {
					gb[base+j] = -gi * y[base+j] / bf[ob+j*sb]
				}
			}
		case "Pow":
			for j, gi := range gr {
				x, z := af[oa+j*sa], bf[ob+j*sb]
				switch z {
				case 2:
					ga[base+j] = 2 * x * gi
				case 1:
					ga[base+j] = gi
				default:
					ga[base+j] = gi * z * float32(math.Pow(float64(x), float64(z-1)))
				}
			}
		case "Max", "Min":
			// Subgradient: ties go to the first operand.
			for j, gi := range gr {
				x, z := af[oa+j*sa], bf[ob+j*sb]
				first := x >= z
				if op == "Min" {
					first = x <= z
				}
				switch {
				case first && ga != nil:
					ga[base+j] = gi
				case !first && gb != nil:
					gb[base+j] = gi
				}
			}
		}
	})
	if ga != nil {
		c.res[0] = reduceTo(ga, out, a.Shape)
	}
	if gb != nil {
		c.res[1] = reduceTo(gb, out, b.Shape)
	}
	return nil
}

// unaryDeriv returns dy/dx given x and y = f(x).
func unaryDeriv(v *ir.Value) (func(x, y float32) float32, error) {
	switch v.Op {
	case "Sqrt":
		return func(x, y float32) float32 { return 0.5 / y }, nil
	case "Erf":
		return func(x, y float32) float32 { return float32(2 / math.SqrtPi * math.Exp(-float64(x)*float64(x))) }, nil
	case "Relu":
		return func(x, y float32) float32 { return step(x > 0) }, nil
	case "Neg":
		return func(x, y float32) float32 { return -1 }, nil
	case "Exp":
		return func(x, y float32) float32 { return y }, nil
	case "Log":
		return func(x, y float32) float32 { return 1 / x }, nil
	case "Tanh":
		return func(x, y float32) float32 { return 1 - y*y }, nil
	case "Sigmoid":
		return func(x, y float32) float32 { return y * (1 - y) }, nil
	case "Abs":
		return func(x, y float32) float32 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return 0
		}, nil
	case "Reciprocal":
		return func(x, y float32) float32 { return -y * y }, nil
	case "Sin":
		return func(x, y float32) float32 { return float32(math.Cos(float64(x))) }, nil
	case "Cos":
		return func(x, y float32) float32 { return float32(-math.Sin(float64(x))) }, nil
	case "LeakyRelu":
		alpha := v.Float("alpha")
		return func(x, y float32) float32 {
			if x < 0 {
				return alpha
			}
			return 1
		}, nil
	case "HardSigmoid":
		alpha, beta := v.Float("alpha"), v.Float("beta")
		return func(x, y float32) float32 { return alpha * step(alpha*x+beta > 0 && alpha*x+beta < 1) }, nil
	case "Gelu":
		if v.Str("approximate") == "tanh" {
			const c = 0.7978845608028654
			return func(x, y float32) float32 {
				xf := float64(x)
				t := math.Tanh(c * (xf + 0.044715*xf*xf*xf))
				return float32(0.5*(1+t) + 0.5*xf*(1-t*t)*c*(1+3*0.044715*xf*xf))
			}, nil
		}
		return func(x, y float32) float32 {
			xf := float64(x)
			return float32(0.5*(1+math.Erf(xf/math.Sqrt2)) + xf*math.Exp(-xf*xf/2)/math.Sqrt(2*math.Pi))
		}, nil
	}
	return nil, fmt.Errorf("no gradient for %s", v.Op)
}

func step(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

func vjpUnary(c *vctx) error {
	x, err := f32Of(c.args[0], "operand")
	if err != nil {
		return err
	}
	d, err := unaryDeriv(c.v)
	if err != nil {
		return err
	}
	y, g := c.out.F32(), c.g
	res := make([]float32, len(g))
	parallelFor(len(g), 16384, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			res[i] = g[i] * d(x[i], y[i])
		}
	})
	c.res[0] = res
	return nil
}

// vjpWhere routes the gradient to the branch each element came from; the
// condition is boolean and gets none.
func vjpWhere(c *vctx) error {
	cond, out := c.args[0], c.out.Shape
	cd, ok := cond.Data.([]bool)
	if !ok {
		return errors.New("condition is not bool")
	}
	var ga, gb []float32
	if c.need[1] {
		ga = make([]float32, len(c.g))
	}
	if c.need[2] {
		gb = make([]float32, len(c.g))
	}
	forEachIndex(out, [][]int{bstrides(cond.Shape, out)}, func(i int, o []int) {
		if cd[o[0]] {
			if ga != nil {
				ga[i] = c.g[i]
			}
		} else if gb != nil {
			gb[i] = c.g[i]
		}
	})
	if ga != nil {
		c.res[1] = reduceTo(ga, out, c.args[1].Shape)
	}
	if gb != nil {
		c.res[2] = reduceTo(gb, out, c.args[2].Shape)
	}
	return nil
}

// vjpClip passes the gradient where the input lies within the bounds
// (inclusive, as PyTorch's clamp does); the bounds get none.
func vjpClip(c *vctx) error {
	x, err := f32Of(c.args[0], "operand")
	if err != nil {
		return err
	}
	if (len(c.need) > 1 && c.need[1]) || (len(c.need) > 2 && c.need[2]) {
		return errors.New("gradient with respect to Clip bounds is not supported")
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	for i, p := range []*float64{&lo, &hi} {
		if 1+i < len(c.args) && c.args[1+i] != nil {
			f, err := c.args[1+i].AsFloat64s()
			if err != nil || len(f) != 1 {
				return errors.New("clip bounds must be scalars")
			}
			*p = f[0]
		}
	}
	res := make([]float32, len(c.g))
	for i, xi := range x {
		if float64(xi) >= lo && float64(xi) <= hi {
			res[i] = c.g[i]
		}
	}
	c.res[0] = res
	return nil
}
