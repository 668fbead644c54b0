// Package data loads tensors and labelled datasets from .npy/.npz files and
// converts between NumPy arrays and IR tensors. Calibration, evaluation and
// `pqvc run` all read their inputs through it.
package data

import (
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand"
	"os"
	"sort"
	"strings"

	"github.com/pqvc/pqvc/internal/tensorio"
	"github.com/pqvc/pqvc/ir"
)

var npToIR = map[string]ir.DType{
	"float32": ir.F32, "float16": ir.F16, "float64": ir.F64, "int8": ir.I8,
	"uint8": ir.U8, "int32": ir.I32, "int64": ir.I64, "bool": ir.Bool,
}

// ToTensor wraps an array's data (not copied) as an IR tensor.
func ToTensor(a *tensorio.Array) (*ir.Tensor, error) {
	dt, ok := npToIR[a.DType]
	if !ok {
		return nil, fmt.Errorf("unsupported dtype %s", a.DType)
	}
	shape := make([]int64, len(a.Shape))
	for i, d := range a.Shape {
		shape[i] = int64(d)
	}
	return &ir.Tensor{DType: dt, Shape: shape, Data: a.Data}, nil
}

// FromTensor wraps a tensor's data (not copied) as an array.
func FromTensor(t *ir.Tensor) (*tensorio.Array, error) {
	for name, dt := range npToIR {
		if dt == t.DType {
			shape := make([]int, len(t.Shape))
			for i, d := range t.Shape {
				shape[i] = int(d)
			}
			return &tensorio.Array{DType: name, Shape: shape, Data: t.Data}, nil
		}
	}
	return nil, fmt.Errorf("dtype %v has no NumPy equivalent", t.DType)
}

// ReadTensors reads every array of a .npy (named "x") or .npz file.
func ReadTensors(path string) (map[string]*ir.Tensor, error) {
	arrs, err := tensorio.Read(path)
	if err != nil {
		return nil, err
	}
	return toTensors(path, arrs)
}

func toTensors(path string, arrs map[string]*tensorio.Array) (map[string]*ir.Tensor, error) {
	out := make(map[string]*ir.Tensor, len(arrs))
	for name, a := range arrs {
		t, err := ToTensor(a)
		if err != nil {
			return nil, fmt.Errorf("%s: member %s: %w", path, name, err)
		}
		out[name] = t
	}
	return out, nil
}

// WriteTensors writes tensors as .npz (all of them) or .npy (exactly one).
func WriteTensors(path string, ts map[string]*ir.Tensor) error {
	arrs := make(map[string]*tensorio.Array, len(ts))
	for name, t := range ts {
		a, err := FromTensor(t)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		arrs[name] = a
	}
	if len(path) > 4 && path[len(path)-4:] == ".npy" {
		if len(arrs) != 1 {
			return fmt.Errorf("%s: .npy holds one array, have %d (use .npz)", path, len(arrs))
		}
		for _, a := range arrs {
			return tensorio.WriteNpy(path, a)
		}
	}
	return tensorio.WriteNpz(path, arrs)
}

// Dataset is a labelled (or unlabelled) set of model inputs.
type Dataset struct {
	X *ir.Tensor // N×… float32 inputs, already normalised for the model; nil Data when they stay on disk (LoadLazy)
	Y []int64    // N labels, nil when unlabelled

	lazy *tensorio.Lazy // where X's data is when X.Data is nil
}

// Len is the number of samples.
func (d *Dataset) Len() int { return int(d.X.Shape[0]) }

// Load reads a dataset: an .npz with `x` (float32, N×…) and optionally `y`
// (integer labels, N), or a .npy of inputs.
func Load(path string) (*Dataset, error) {
	ts, err := ReadTensors(path)
	if err != nil {
		return nil, err
	}
	return fromTensors(path, ts, nil)
}

// LoadLazy is Load, except that the inputs of an .npz stored uncompressed
// (np.savez, as pqvc writes) as little-endian float32 stay on disk when
// they take at least minBytes: they are checked once (header, length,
// CRC) and Samples reads them as it needs them. A few hundred 224×224
// calibration images are as large as DeiT-base itself, and holding them
// whole would double a compile's memory. Batch cannot be used on such a
// dataset; Samples can.
func LoadLazy(path string, minBytes int64) (*Dataset, error) {
	if !strings.HasSuffix(path, ".npz") {
		return Load(path)
	}
	arrs, lazy, err := tensorio.ReadNpzLazy(path, tensorio.LazyRule{Name: "x", MinBytes: minBytes})
	if err != nil {
		return nil, err
	}
	var x *ir.Tensor // the inputs left on disk: shape only
	if lazy != nil {
		x = &ir.Tensor{DType: ir.F32}
		for _, d := range lazy.Shape {
			x.Shape = append(x.Shape, int64(d))
		}
		delete(arrs, "x")
	}
	ts, err := toTensors(path, arrs)
	if err != nil {
		return nil, err
	}
	if x != nil {
		ts["x"] = x
	}
	return fromTensors(path, ts, lazy)
}

func fromTensors(path string, ts map[string]*ir.Tensor, lazy *tensorio.Lazy) (*Dataset, error) {
	x, ok := ts["x"]
	if !ok && len(ts) == 1 && !strings.HasSuffix(path, ".npz") {
		for _, t := range ts {
			x, ok = t, true // a lone .npy holds the inputs
		}
	}
	if !ok {
		names := make([]string, 0, len(ts))
		for k := range ts {
			names = append(names, k)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("%s: no member \"x\" (has %v)", path, names)
	}
	if x.DType != ir.F32 {
		return nil, fmt.Errorf("%s: x is %v, want float32", path, x.DType)
	}
	if len(x.Shape) < 1 || x.Shape[0] < 1 {
		return nil, fmt.Errorf("%s: x has shape %v, want N×… with N ≥ 1", path, x.Shape)
	}
	d := &Dataset{X: x, lazy: lazy}
	if y, ok := ts["y"]; ok {
		ys, err := y.AsInt64s()
		if err != nil || y.DType == ir.Bool {
			return nil, fmt.Errorf("%s: y is %v, want integer labels", path, y.DType)
		}
		if len(y.Shape) != 1 || y.Shape[0] != x.Shape[0] {
			return nil, fmt.Errorf("%s: y has shape %v, want [%d] to match x", path, y.Shape, x.Shape[0])
		}
		d.Y = ys
	}
	return d, nil
}

// Batch returns samples [lo, hi) as a tensor sharing d's data. It is for
// datasets in memory (Load); Samples serves every dataset.
func (d *Dataset) Batch(lo, hi int) *ir.Tensor {
	if d.lazy != nil {
		panic("data: Batch on a dataset left on disk; use Samples")
	}
	per := d.X.Len() / d.Len()
	shape := append([]int64{int64(hi - lo)}, d.X.Shape[1:]...)
	return &ir.Tensor{DType: ir.F32, Shape: shape, Data: d.X.F32()[lo*per : hi*per]}
}

// Samples returns samples [lo, hi): a view of d's data when it is in
// memory, else read from its file.
func (d *Dataset) Samples(lo, hi int) (*ir.Tensor, error) {
	if d.lazy == nil {
		return d.Batch(lo, hi), nil
	}
	per := d.X.Len() / d.Len()
	shape := append([]int64{int64(hi - lo)}, d.X.Shape[1:]...)
	buf := make([]byte, 4*(hi-lo)*per)
	f, err := os.Open(d.lazy.Path)
	if err != nil {
		return nil, fmt.Errorf("reading samples %d to %d: %w", lo, hi, err)
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, d.lazy.Offset+4*int64(lo*per)); err != nil {
		return nil, fmt.Errorf("%s: reading samples %d to %d: %w (was it changed during the run?)", d.lazy.Path, lo, hi, err)
	}
	xs := make([]float32, (hi-lo)*per)
	for i := range xs {
		xs[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return ir.F32Tensor(shape, xs), nil
}

// CheckInput reports whether the dataset's sample shape fits a model input
// type (static dims equal; the first dim is the batch).
func (d *Dataset) CheckInput(in *ir.Value) error {
	t := in.Type
	if t.Rank() != len(d.X.Shape) {
		return fmt.Errorf("data samples are %v, model input %q is %v", d.X.Shape[1:], in.Name, t)
	}
	for i := 1; i < t.Rank(); i++ {
		if dim := t.Shape[i]; dim.IsStatic() && dim.C != d.X.Shape[i] {
			return fmt.Errorf("data samples are %v, model input %q is %v", d.X.Shape[1:], in.Name, t)
		}
	}
	return nil
}

// Gaussian is a dataset of n seeded standard-normal samples of the given
// per-sample shape, without labels: calibration data for a model whose real
// data is not at hand (benchmarks on seeded-weight DeiT graphs).
func Gaussian(seed int64, n int, shape ...int64) *Dataset {
	dims := append([]int64{int64(n)}, shape...)
	size := int64(1)
	for _, d := range dims {
		size *= d
	}
	rng := mrand.New(mrand.NewSource(seed))
	xs := make([]float32, size)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	return &Dataset{X: ir.F32Tensor(dims, xs)}
}
