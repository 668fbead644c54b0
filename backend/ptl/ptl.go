// Package ptl writes PyTorch Lite models (.ptl) from the IR with no Python
// at compile time.
//
// The graph is cloned, its symbolic dims (batch) bound to a fixed size and
// folded by canonicalize, then lowered to a straight-line list of aten
// calls. That list is written twice into one TorchScript zip archive: as
// TorchScript source (code/, for torch.jit.load) and as mobile bytecode
// (bytecode.pkl, for torch.jit.mobile._load_for_lite_interpreter). Weights
// are frozen constants (constants.pkl, constants/), shared by both; int8
// weights stay int8 in the archive.
package ptl

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"

	"github.com/pqvc/pqvc/internal/atomicfile"
	"github.com/pqvc/pqvc/ir"
	"github.com/pqvc/pqvc/passes/canon"
)

// Format says which loaders the archive serves.
type Format string

const (
	// FormatPTL writes TorchScript source and mobile bytecode: the file
	// loads with both torch.jit.load and the Lite interpreter.
	FormatPTL Format = "ptl"
	// FormatTorchScript leaves out bytecode.pkl: torch.jit.load only.
	FormatTorchScript Format = "torchscript"
)

// Options configure Write.
type Options struct {
	// Batch is the size every symbolic dim is bound to (default 1): the
	// Lite model has static shapes.
	Batch int64
	// Format is FormatPTL (default) or FormatTorchScript.
	Format Format
	// Int8Linear is Int8Packed (default) or Int8Dequant.
	Int8Linear Int8Linear
	// NoXNNPACK keeps f32 linear layers as aten::matmul (+ add) instead of
	// XNNPACK-prepacked prepacked::linear_clamp_run, for Lite runtimes
	// built without XNNPACK.
	NoXNNPACK bool
}

// Int8Linear says how dynamic int8 linear layers (the MatMulInteger pattern
// quantize int8 mode=dynamic writes) are lowered.
type Int8Linear string

const (
	// Int8Packed runs them as quantized::linear_dynamic on packed qint8
	// weights (QNNPACK or oneDNN, whichever engine is active at load).
	Int8Packed Int8Linear = "packed"
	// Int8Dequant keeps int8 weights and converts them to float in the
	// model code, reproducing the graph's integer arithmetic exactly.
	Int8Dequant Int8Linear = "dequant"
)

// className is the TorchScript class of the written module.
const className = "PqvcModel"

// Write lowers g and writes the archive to path atomically, streaming
// weights straight to the file. g is not changed.
func Write(path string, g *ir.Graph, o Options) error {
	p, o, err := build(g, o)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		if err := p.writeArchive(w, o.Format); err != nil {
			return fmt.Errorf("emit ptl: %w", err)
		}
		return nil
	})
}

// Encode returns the archive bytes for g.
func Encode(g *ir.Graph, o Options) ([]byte, error) {
	p, o, err := build(g, o)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := p.writeArchive(&buf, o.Format); err != nil {
		return nil, fmt.Errorf("emit ptl: %w", err)
	}
	return buf.Bytes(), nil
}

// build checks o, fills its defaults and lowers a specialised clone of g.
func build(g *ir.Graph, o Options) (*program, Options, error) {
	if o.Batch == 0 {
		o.Batch = 1
	}
	if o.Batch < 0 {
		return nil, o, fmt.Errorf("emit ptl: batch must be positive, got %d", o.Batch)
	}
	switch o.Format {
	case "":
		o.Format = FormatPTL
	case FormatPTL, FormatTorchScript:
	default:
		return nil, o, fmt.Errorf("emit ptl: format must be ptl or torchscript, got %q", o.Format)
	}
	switch o.Int8Linear {
	case "":
		o.Int8Linear = Int8Packed
	case Int8Packed, Int8Dequant:
	default:
		return nil, o, fmt.Errorf("emit ptl: int8_linear must be packed or dequant, got %q", o.Int8Linear)
	}
	h, err := specialize(g, o.Batch)
	if err != nil {
		return nil, o, fmt.Errorf("emit ptl: %w", err)
	}
	p, err := lower(h, o.Int8Linear == Int8Packed, !o.NoXNNPACK)
	if err != nil {
		return nil, o, fmt.Errorf("emit ptl: %w", err)
	}
	return p, o, nil
}

// specialize returns a clone of g with every symbolic dim bound to batch,
// types re-inferred and shape computations folded away.
func specialize(g *ir.Graph, batch int64) (*ir.Graph, error) {
	h := g.Clone()
	if err := h.BindInputs(batch); err != nil {
		return nil, err
	}
	if _, err := canon.Canonicalize(h, canon.DefaultCanonicalize); err != nil {
		return nil, fmt.Errorf("folding shapes: %w", err)
	}
	for _, v := range h.Values() {
		if !v.Type.Shape.IsStatic() {
			return nil, fmt.Errorf("node %s: shape %v is not static after binding batch=%d", v, v.Type.Shape, batch)
		}
	}
	return h, nil
}

// writeArchive writes the zip archive torch.jit.load and the Lite
// interpreter read.
func (p *program) writeArchive(w io.Writer, f Format) error {
	zw := newZipWriter(w)
	dataPkl, err := pickle(pyObject{Class: pyGlobal{"__torch__", className}})
	if err != nil {
		return err
	}
	if err := zw.add("data.pkl", dataPkl); err != nil {
		return err
	}
	src, err := p.source()
	if err != nil {
		return err
	}
	if err := zw.add(filepath.ToSlash(filepath.Join("code", "__torch__.py")), []byte(src)); err != nil {
		return err
	}
	consts := make(pyTuple, len(p.consts))
	nstorage := 0
	storage := func(t *ir.Tensor, cls string) (pyPersistent, error) {
		if t.Opaque() {
			return pyPersistent{}, fmt.Errorf("constant has no data")
		}
		key := fmt.Sprintf("%d.storage", nstorage)
		nstorage++
		if err := zw.add("constants/"+key, t.RawBytes()); err != nil {
			return pyPersistent{}, err
		}
		return pyPersistent{ID: pyTuple{"storage", pyGlobal{"torch", cls}, key, "cpu", int64(t.Len())}}, nil
	}
	// optionalFloatTensor pickles a linear layer's optional f32 bias: None
	// when t is nil.
	optionalFloatTensor := func(t *ir.Tensor) (any, error) {
		if t == nil {
			return pyNone{}, nil
		}
		st, err := storage(t, "FloatStorage")
		if err != nil {
			return nil, err
		}
		return tensorPickle(st, t), nil
	}
	for i, c := range p.consts {
		switch c := c.(type) {
		case *ir.Tensor:
			cls, ok := storageClass(c.DType)
			if !ok {
				return fmt.Errorf("constant %d: cannot store %v data", i, c.DType)
			}
			st, err := storage(c, cls)
			if err != nil {
				return fmt.Errorf("constant %d: %w", i, err)
			}
			consts[i] = tensorPickle(st, c)
		case *packedLinear:
			st, err := storage(c.weight, "QInt8Storage")
			if err != nil {
				return fmt.Errorf("constant %d: %w", i, err)
			}
			bias, err := optionalFloatTensor(c.bias)
			if err != nil {
				return fmt.Errorf("constant %d bias: %w", i, err)
			}
			consts[i] = c.pickle(st, bias)
		case *xnnpackLinear:
			st, err := storage(c.weight, "FloatStorage")
			if err != nil {
				return fmt.Errorf("constant %d: %w", i, err)
			}
			bias, err := optionalFloatTensor(c.bias)
			if err != nil {
				return fmt.Errorf("constant %d bias: %w", i, err)
			}
			consts[i] = c.pickle(tensorPickle(st, c.weight), bias)
		default:
			return fmt.Errorf("constant %d: unexpected %T", i, c)
		}
	}
	constPkl, err := pickle(consts)
	if err != nil {
		return err
	}
	if err := zw.add("constants.pkl", constPkl); err != nil {
		return err
	}
	if f == FormatPTL {
		bc, err := p.bytecode(func(i int) any { return consts[i] })
		if err != nil {
			return err
		}
		bcPkl, err := pickle(bc)
		if err != nil {
			return err
		}
		if err := zw.add("bytecode.pkl", bcPkl); err != nil {
			return err
		}
	}
	if err := zw.add(".data/version", []byte("3\n")); err != nil {
		return err
	}
	return zw.close()
}
