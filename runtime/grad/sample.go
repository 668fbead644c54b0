package grad

import (
	"errors"
	"fmt"

	"github.com/pqvc/pqvc/ir"
)

// batchSize is the number of samples in a batch: the label count, else the
// teacher's leading dim, else the first input's leading dim.
func batchSize(inputs map[string]*ir.Tensor, loss Loss) (int, error) {
	switch {
	case loss.Kind != "kl" && loss.Labels != nil:
		return len(loss.Labels), nil
	case loss.Teacher != nil && len(loss.Teacher.Shape) > 0:
		return int(loss.Teacher.Shape[0]), nil
	}
	for _, t := range inputs {
		if t != nil && len(t.Shape) > 0 {
			return int(t.Shape[0]), nil
		}
	}
	return 0, errors.New("grad: cannot tell the batch size")
}

// sampleOf slices sample i out of a batch of n: every input whose leading
// dim is n, the label and the teacher row. Data is shared, not copied.
// Models with a static batch dim other than 1 cannot run a single sample;
// the runtime then reports the shape mismatch.
func sampleOf(inputs map[string]*ir.Tensor, loss Loss, i, n int) (map[string]*ir.Tensor, Loss, error) {
	in := make(map[string]*ir.Tensor, len(inputs))
	for name, t := range inputs {
		if len(t.Shape) == 0 || int(t.Shape[0]) != n {
			in[name] = t
			continue
		}
		s, err := rowOf(t, i, n)
		if err != nil {
			return nil, loss, fmt.Errorf("grad: input %q: %w", name, err)
		}
		in[name] = s
	}
	l := loss
	if loss.Labels != nil {
		if len(loss.Labels) != n {
			return nil, loss, fmt.Errorf("grad: %d labels for %d samples", len(loss.Labels), n)
		}
		l.Labels = loss.Labels[i : i+1]
	}
	if loss.Teacher != nil {
		s, err := rowOf(loss.Teacher, i, n)
		if err != nil {
			return nil, loss, fmt.Errorf("grad: teacher: %w", err)
		}
		l.Teacher = s
	}
	return in, l, nil
}

// rowOf returns t[i:i+1] along the leading axis, sharing data.
func rowOf(t *ir.Tensor, i, n int) (*ir.Tensor, error) {
	if len(t.Shape) == 0 || int(t.Shape[0]) != n {
		return nil, fmt.Errorf("shape %v has no batch of %d", t.Shape, n)
	}
	per := t.Len() / n
	shape := append([]int64{1}, t.Shape[1:]...)
	lo, hi := i*per, (i+1)*per
	var data any
	switch d := t.Data.(type) {
	case []float32:
		data = d[lo:hi]
	case []int64:
		data = d[lo:hi]
	case []int32:
		data = d[lo:hi]
	case []uint8:
		data = d[lo:hi]
	case []int8:
		data = d[lo:hi]
	case []bool:
		data = d[lo:hi]
	case []uint16:
		data = d[lo:hi]
	case []float64:
		data = d[lo:hi]
	default:
		return nil, fmt.Errorf("cannot slice %v data", t.DType)
	}
	return &ir.Tensor{DType: t.DType, Shape: shape, Data: data}, nil
}
