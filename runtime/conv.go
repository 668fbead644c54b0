package runtime

import (
	"fmt"

	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/runtime/kernels"
)

func init() { register("Conv", conv) }

// conv is a 2-D (or 1-D, as H=1) convolution by im2col and GEMM. ViTs use
// it once, for the patch embedding, where stride equals kernel and im2col
// is a plain permutation.
func conv(x *execCtx, v *ir.Value, args []*ir.Tensor) (*ir.Tensor, error) {
	in, w := args[0], args[1]
	var bias *ir.Tensor
	if len(args) > 2 {
		bias = args[2]
	}
	if in.DType != ir.F32 || w.DType != ir.F32 {
		return nil, fmt.Errorf("Conv on %v is not supported", in.DType)
	}
	if len(in.Shape) != 4 && len(in.Shape) != 3 {
		return nil, fmt.Errorf("%d-D convolution is not supported", len(in.Shape)-2)
	}
	g, err := ir.ConvParams(v, ir.StaticShape(in.Shape...), ir.StaticShape(w.Shape...))
	if err != nil {
		return nil, err
	}
	// Treat 1-D as 2-D with H = 1.
	is, ws := in.Shape, w.Shape
	kh, kw, sh, sw, dh, dw := int64(1), g.Kernel[0], int64(1), g.Strides[0], int64(1), g.Dilations[0]
	pt, pl, pb, pr := int64(0), g.Pads[0], int64(0), g.Pads[1]
	if len(is) == 3 {
		is = []int64{is[0], is[1], 1, is[2]}
		ws = []int64{ws[0], ws[1], 1, ws[2]}
	} else {
		kh, kw, sh, sw, dh, dw = g.Kernel[0], g.Kernel[1], g.Strides[0], g.Strides[1], g.Dilations[0], g.Dilations[1]
		pt, pl, pb, pr = g.Pads[0], g.Pads[1], g.Pads[2], g.Pads[3]
	}
	n, c, h, wd := int(is[0]), int(is[1]), is[2], is[3]
	m := int(ws[0])
	grp := int(g.Group)
	if c%grp != 0 || m%grp != 0 || int(ws[1])*grp != c {
		return nil, fmt.Errorf("channels %d and filters %d do not fit %d groups of weight %v", c, m, grp, w.Shape)
	}
	oh := (h+pt+pb-((kh-1)*dh+1))/sh + 1
	ow := (wd+pl+pr-((kw-1)*dw+1))/sw + 1
	if oh <= 0 || ow <= 0 {
		return nil, fmt.Errorf("output size %dx%d", oh, ow)
	}
	outShape := []int64{int64(n), int64(m), oh, ow}
	res, err := newTensor(ir.F32, outShape)
	if err != nil {
		return nil, err
	}
	cg, mg := c/grp, m/grp
	kk := cg * int(kh*kw)
	ohw := int(oh * ow)
	col := make([]float32, kk*ohw)
	src, wt, dst := in.F32(), w.F32(), res.F32()
	for b := range n {
		for gi := range grp {
			// im2col: row (ci, ki, kj), column (oy, ox).
			parallelFor(kk, 1, func(lo, hi int) {
				for r := lo; r < hi; r++ {
					ci := r / int(kh*kw)
					ki := int64(r/int(kw)) % kh
					kj := int64(r % int(kw))
					plane := src[((b*c)+gi*cg+ci)*int(h*wd):]
					row := col[r*ohw : (r+1)*ohw]
					for oy := range oh {
						iy := oy*sh - pt + ki*dh
						for ox := range ow {
							ix := ox*sw - pl + kj*dw
							if iy < 0 || iy >= h || ix < 0 || ix >= wd {
								row[oy*ow+ox] = 0
							} else {
								row[oy*ow+ox] = plane[iy*wd+ix]
							}
						}
					}
				}
			})
			out := dst[(b*m+gi*mg)*ohw:]
			kernels.Sgemm(false, false, mg, ohw, kk, 1, wt[gi*mg*kk:], kk, col, ohw, 0, out, ohw)
		}
		if bias != nil {
			bd := bias.F32()
			for j := range m {
				o := dst[(b*m+j)*ohw : (b*m+j+1)*ohw]
				for i := range o {
					o[i] += bd[j]
				}
			}
		}
	}
	if len(in.Shape) == 3 {
		return res.Reshaped([]int64{int64(n), int64(m), ow}), nil
	}
	return res, nil
}
