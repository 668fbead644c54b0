package grad

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

func init() {
	vjpTable["MatMul"] = vjpMatMul
	vjpTable["Gemm"] = vjpGemm
	vjpTable["Conv"] = vjpConv
	vjpTable["Softmax"] = vjpSoftmax
	vjpTable["LogSoftmax"] = vjpSoftmax
	vjpTable["LayerNormalization"] = vjpLayerNorm
	for _, op := range []string{"ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "ReduceMax", "ReduceMin"} {
		vjpTable[op] = vjpReduce
	}
	vjpTable["GlobalAveragePool"] = vjpGlobalAvgPool
}

// vjpMatMul is numpy matmul's VJP: gA = gC·Bᵀ and gB = Aᵀ·gC per batch
// matrix, summed over batch dims an operand was broadcast along.
func vjpMatMul(c *vctx) error {
	a, b := c.args[0], c.args[1]
	ad, err := f32Of(a, "A")
	if err != nil {
		return err
	}
	bd, err := f32Of(b, "B")
	if err != nil {
		return err
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 1 {
		as = []int64{1, as[0]}
	}
	if len(bs) == 1 {
		bs = []int64{bs[0], 1}
	}
	m, k, n := int(as[len(as)-2]), int(as[len(as)-1]), int(bs[len(bs)-1])
	g := c.g
	var ga, gb []float32
	if c.need[0] {
		ga = make([]float32, len(ad))
	}
	if c.need[1] {
		gb = make([]float32, len(bd))
	}
	if len(bs) == 2 {
		// B is one matrix (a weight): fold every batch row of A into M, so
		// each gradient is a single large GEMM.
		rows := len(ad) / max(k, 1)
		if ga != nil {
			kernels.Sgemm(false, true, rows, k, n, 1, g, n, bd, n, 0, ga, k)
		}
		if gb != nil {
			kernels.Sgemm(true, false, k, n, rows, 1, ad, k, g, n, 0, gb, n)
		}
		c.res[0], c.res[1] = ga, gb
		return nil
	}
	batchA, batchB := as[:len(as)-2], bs[:len(bs)-2]
	bsh, err := broadcastShape(batchA, batchB)
	if err != nil {
		return err
	}
	nb := prod(bsh)
	if slices.Equal(batchA, bsh) && slices.Equal(batchB, bsh) {
		if ga != nil {
			kernels.SgemmStridedBatched(false, true, m, k, n, 1, g, n, m*n, bd, n, k*n, 0, ga, k, m*k, nb)
		}
		if gb != nil {
			kernels.SgemmStridedBatched(true, false, k, n, m, 1, ad, k, m*k, g, n, m*n, 0, gb, n, k*n, nb)
		}
		c.res[0], c.res[1] = ga, gb
		return nil
	}
	// Broadcast batches: accumulate (beta = 1) into the shared operand
	// matrix, one batch at a time so no two GEMMs write the same block.
	sa, sb := bstrides(batchA, bsh), bstrides(batchB, bsh)
	forEachIndex(bsh, [][]int{sa, sb}, func(i int, o []int) {
		offA, offB, offC := o[0]*m*k, o[1]*k*n, i*m*n
		if ga != nil {
			kernels.Sgemm(false, true, m, k, n, 1, g[offC:], n, bd[offB:], n, 1, ga[offA:], k)
		}
		if gb != nil {
			kernels.Sgemm(true, false, k, n, m, 1, ad[offA:], k, g[offC:], n, 1, gb[offB:], n)
		}
	})
	c.res[0], c.res[1] = ga, gb
	return nil
}

// broadcastShape is numpy broadcasting of two shapes.
func broadcastShape(a, b []int64) ([]int64, error) {
	r := max(len(a), len(b))
	out := make([]int64, r)
	for i := range r {
		x, y := int64(1), int64(1)
		if j := i - (r - len(a)); j >= 0 {
			x = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			y = b[j]
		}
		switch {
		case x == y || y == 1:
			out[i] = x
		case x == 1:
			out[i] = y
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

// vjpGemm differentiates Y = alpha·op(A)·op(B) + beta·C, choosing GEMM
// transposes so no operand is transposed in memory.
func vjpGemm(c *vctx) error {
	a, b := c.args[0], c.args[1]
	ad, err := f32Of(a, "A")
	if err != nil {
		return err
	}
	bd, err := f32Of(b, "B")
	if err != nil {
		return err
	}
	if len(a.Shape) != 2 || len(b.Shape) != 2 {
		return fmt.Errorf("Gemm operands %v and %v are not matrices", a.Shape, b.Shape)
	}
	alpha, beta := c.v.Float("alpha"), c.v.Float("beta")
	tA, tB := c.v.Int("transA") != 0, c.v.Int("transB") != 0
	m, k := int(a.Shape[0]), int(a.Shape[1])
	if tA {
		m, k = k, m
	}
	n := int(b.Shape[1])
	if tB {
		n = int(b.Shape[0])
	}
	lda, ldb := int(a.Shape[1]), int(b.Shape[1])
	g := c.g
	if c.need[0] {
		ga := make([]float32, len(ad))
		if !tA { // gA = alpha·gY·op(B)ᵀ, [m,k]
			kernels.Sgemm(false, !tB, m, k, n, alpha, g, n, bd, ldb, 0, ga, k)
		} else { // gA = alpha·op(B)·gYᵀ, stored [k,m]
			kernels.Sgemm(tB, true, k, m, n, alpha, bd, ldb, g, n, 0, ga, m)
		}
		c.res[0] = ga
	}
	if c.need[1] {
		gb := make([]float32, len(bd))
		if !tB { // gB = alpha·op(A)ᵀ·gY, [k,n]
			kernels.Sgemm(!tA, false, k, n, m, alpha, ad, lda, g, n, 0, gb, n)
		} else { // gB = alpha·gYᵀ·op(A), stored [n,k]
			kernels.Sgemm(true, tA, n, k, m, alpha, g, n, ad, lda, 0, gb, k)
		}
		c.res[1] = gb
	}
	if len(c.need) > 2 && c.need[2] {
		gc := reduceTo(g, c.out.Shape, c.args[2].Shape)
		if beta != 1 {
			for i := range gc {
				gc[i] *= beta
			}
		}
		c.res[2] = gc
	}
	return nil
}

// vjpConv handles 2-D convolutions (any stride, padding, dilation, group)
// with im2col: gW = gY·colᵀ and gX = col2im(Wᵀ·gY), per image and group.
func vjpConv(c *vctx) error {
	x, w := c.args[0], c.args[1]
	xd, err := f32Of(x, "input")
	if err != nil {
		return err
	}
	wd, err := f32Of(w, "weight")
	if err != nil {
		return err
	}
	if len(x.Shape) != 4 {
		return fmt.Errorf("gradient of %d-D Conv is not supported (2-D only)", len(x.Shape)-2)
	}
	geo, err := ir.ConvParams(c.v, ir.StaticShape(x.Shape...), ir.StaticShape(w.Shape...))
	if err != nil {
		return err
	}
	N, C, H, W := int(x.Shape[0]), int(x.Shape[1]), int(x.Shape[2]), int(x.Shape[3])
	M, OH, OW := int(c.out.Shape[1]), int(c.out.Shape[2]), int(c.out.Shape[3])
	G := int(geo.Group)
	Cg, Mg := C/G, M/G
	kh, kw := int(geo.Kernel[0]), int(geo.Kernel[1])
	sh, sw := int(geo.Strides[0]), int(geo.Strides[1])
	dh, dw := int(geo.Dilations[0]), int(geo.Dilations[1])
	ph, pw := int(geo.Pads[0]), int(geo.Pads[1])
	P, CK := OH*OW, Cg*kh*kw
	g := c.g
	var gx, gw []float32
	if c.need[0] {
		gx = make([]float32, len(xd))
	}
	if c.need[1] {
		gw = make([]float32, len(wd))
	}
	col := make([]float32, CK*P)
	// visit maps every (col row, output position) to its input element.
	visit := func(img, grp int, fn func(ci, xi int)) {
		for cc := range Cg {
			base := ((img*C + grp*Cg + cc) * H) * W
			for ki := range kh {
				for kj := range kw {
					r := (cc*kh+ki)*kw + kj
					for oh := range OH {
						ih := oh*sh - ph + ki*dh
						if ih < 0 || ih >= H {
							continue
						}
						for ow := range OW {
							iw := ow*sw - pw + kj*dw
							if iw >= 0 && iw < W {
								fn(r*P+oh*OW+ow, base+ih*W+iw)
							}
						}
					}
				}
			}
		}
	}
	for img := range N {
		for grp := range G {
			gy := g[(img*M+grp*Mg)*P:]
			if gw != nil {
				clear(col)
				visit(img, grp, func(ci, xi int) { col[ci] = xd[xi] })
				kernels.Sgemm(false, true, Mg, CK, P, 1, gy, P, col, P, 1, gw[grp*Mg*CK:], CK)
			}
			if gx != nil {
				kernels.Sgemm(true, false, CK, P, Mg, 1, wd[grp*Mg*CK:], CK, gy, P, 0, col, P)
				visit(img, grp, func(ci, xi int) { gx[xi] += col[ci] })
			}
		}
	}
	c.res[0], c.res[1] = gx, gw
	if len(c.need) > 2 && c.need[2] {
		gb := make([]float32, M)
		for img := range N {
			for m := range M {
				var s float32
				for _, y := range g[(img*M+m)*P : (img*M+m+1)*P] {
					s += y
				}
				gb[m] += s
			}
		}
		c.res[2] = gb
	}
	return nil
}

// axisSplit views shape as [outer, n, inner] around axis.
func axisSplit(shape []int64, axis int64) (outer, n, inner int, err error) {
	r := int64(len(shape))
	if axis < 0 {
		axis += r
	}
	if axis < 0 || axis >= r {
		return 0, 0, 0, fmt.Errorf("axis %d out of range for rank %d", axis, r)
	}
	return prod(shape[:axis]), int(shape[axis]), prod(shape[axis+1:]), nil
}

// vjpSoftmax: for y = softmax(x), gx = y·(g − Σ g·y); for y = log_softmax(x),
// gx = g − softmax(x)·Σ g.
func vjpSoftmax(c *vctx) error {
	outer, n, inner, err := axisSplit(c.out.Shape, c.v.Int("axis"))
	if err != nil {
		return err
	}
	y, g := c.out.F32(), c.g
	res := make([]float32, len(g))
	logSm := c.v.Op == "LogSoftmax"
	parallelFor(outer*inner, max(1, 4096/max(n, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			base := (r/inner)*n*inner + r%inner
			var s float64
			for j := range n {
				i := base + j*inner
				if logSm {
					s += float64(g[i])
				} else {
					s += float64(g[i]) * float64(y[i])
				}
			}
			for j := range n {
				i := base + j*inner
				if logSm {
					res[i] = g[i] - float32(math.Exp(float64(y[i]))*s)
				} else {
					res[i] = y[i] * (g[i] - float32(s))
				}
			}
		}
	})
	c.res[0] = res
	return nil
}

// vjpLayerNorm recomputes the row statistics (in float64, as the forward
// kernel does) and applies the standard normalisation VJP.
func vjpLayerNorm(c *vctx) error {
	x, err := f32Of(c.args[0], "input")
	if err != nil {
		return err
	}
	scale, err := f32Of(c.args[1], "scale")
	if err != nil {
		return err
	}
	shape := c.args[0].Shape
	axis := c.v.Int("axis")
	if axis < 0 {
		axis += int64(len(shape))
	}
	if axis < 0 || axis >= int64(len(shape)) {
		return fmt.Errorf("axis %d out of range", c.v.Int("axis"))
	}
	rows, n := prod(shape[:axis]), prod(shape[axis:])
	eps := float64(c.v.Float("epsilon"))
	g := c.g
	var gx, gs, gbias []float32
	if c.need[0] {
		gx = make([]float32, len(x))
	}
	if c.need[1] {
		gs = make([]float32, len(scale))
	}
	if len(c.need) > 2 && c.need[2] {
		gbias = make([]float32, c.args[2].Len())
	}
	xhat := make([]float64, len(x))
	inv := make([]float64, rows)
	parallelFor(rows, max(1, 8192/max(n, 1)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*n : (r+1)*n]
			var mean, variance float64
			for _, v := range row {
				mean += float64(v)
			}
			mean /= float64(n)
			for _, v := range row {
				d := float64(v) - mean
				variance += d * d
			}
			variance /= float64(n)
			inv[r] = 1 / math.Sqrt(variance+eps)
			for j, v := range row {
				xhat[r*n+j] = (float64(v) - mean) * inv[r]
			}
		}
	})
	if gx != nil {
		parallelFor(rows, max(1, 8192/max(n, 1)), func(lo, hi int) {
			for r := lo; r < hi; r++ {
				var s1, s2 float64
				for j := range n {
					gh := float64(g[r*n+j]) * float64(scale[j%len(scale)])
					s1 += gh
					s2 += gh * xhat[r*n+j]
				}
				s1 /= float64(n)
				s2 /= float64(n)
				for j := range n {
					gh := float64(g[r*n+j]) * float64(scale[j%len(scale)])
					gx[r*n+j] = float32(inv[r] * (gh - s1 - xhat[r*n+j]*s2))
				}
			}
		})
	}
	if gs != nil || gbias != nil {
		acc := make([]float64, n)
		accB := make([]float64, n)
		for i, gi := range g {
			acc[i%n] += float64(gi) * xhat[i]
			accB[i%n] += float64(gi)
		}
		for j := range n {
			if gs != nil {
				gs[j%len(gs)] += float32(acc[j])
			}
			if gbias != nil {
				gbias[j%len(gbias)] += float32(accB[j])
			}
		}
	}
	c.res[0], c.res[1] = gx, gs
	if gbias != nil {
		c.res[2] = gbias
	}
	return nil
}

// vjpReduce spreads the gradient of each reduced element back over the
// elements it was reduced from.
func vjpReduce(c *vctx) error {
	x, err := f32Of(c.args[0], "input")
	if err != nil {
		return err
	}
	shape := c.args[0].Shape
	axes, err := ir.ReduceAxes(c.v, len(shape))
	if err != nil {
		return err
	}
	if axes == nil { // noop_with_empty_axes
		c.res[0] = c.g
		return nil
	}
	full := slices.Clone(shape)
	for _, ax := range axes {
		full[ax] = 1
	}
	cnt := float32(prod(shape) / max(prod(full), 1))
	y, g := c.out.F32(), c.g
	res := make([]float32, len(x))
	op := c.v.Op
	st := bstrides(full, shape)
	inner, si := rowLen(shape), lastStride(st)
	// Each input row reads one output row (or one element, when the last
	// axis is reduced); rows write disjoint parts of res.
	forEachRow(shape, [][]int{st}, true, func(r int, o []int) {
		for j := range inner {
			i, k := r*inner+j, o[0]+j*si
			gi := g[k]
			switch op {
			case "ReduceMean":
				res[i] = gi / cnt
			case "ReduceSum":
				res[i] = gi
			case "ReduceSumSquare":
				res[i] = 2 * x[i] * gi
			case "ReduceL2":
				if y[k] != 0 {
					res[i] = x[i] / y[k] * gi
				}
			case "ReduceMax", "ReduceMin":
				// Subgradient: every element equal to the extreme gets it.
				if x[i] == y[k] {
					res[i] = gi
				}
			}
		}
	})
	c.res[0] = res
	return nil
}

func vjpGlobalAvgPool(c *vctx) error {
	shape := c.args[0].Shape
	if len(shape) < 3 {
		return errors.New("GlobalAveragePool input has rank < 3")
	}
	p := prod(shape[2:])
	res := make([]float32, prod(shape))
	for i, gi := range c.g {
		for j := range p {
			res[i*p+j] = gi / float32(p)
		}
	}
	c.res[0] = res
	return nil
}
