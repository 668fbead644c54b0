package ptl

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/pqvc/pqvc/ir"
)

// A program is the straight-line list of aten calls a graph lowers to. The
// same program prints as TorchScript source (for torch.jit.load) and as
// mobile bytecode (for the Lite interpreter), so the two cannot disagree.

// atenOp is one operator overload as the Lite interpreter looks it up.
type atenOp struct {
	Name     string         // "aten::add"
	Overload string         // "Tensor"; "" for the default overload
	Fn       string         // TorchScript callee, "torch.add"
	Kw       map[int]string // argument positions TorchScript source passes by keyword
}

type operandKind int

const (
	kReg        operandKind = iota // a register (SSA value)
	kInt                           // int literal
	kFloat                         // float literal
	kBool                          // bool literal
	kStr                           // string literal
	kNone                          // None
	kInts                          // int[] literal
	kTensor                        // a stored constant (tensor or packed weights)
	kTensorList                    // Tensor[] built from operands
)

// operand is one argument of a call.
type operand struct {
	kind operandKind
	reg  int
	i    int64
	f    float64
	b    bool
	s    string
	ints []int64
	list []operand
}

func reg(r int) operand               { return operand{kind: kReg, reg: r} }
func intLit(i int64) operand          { return operand{kind: kInt, i: i} }
func floatLit(f float64) operand      { return operand{kind: kFloat, f: f} }
func boolLit(b bool) operand          { return operand{kind: kBool, b: b} }
func strLit(s string) operand         { return operand{kind: kStr, s: s} }
func noneLit() operand                { return operand{kind: kNone} }
func intsLit(xs []int64) operand      { return operand{kind: kInts, ints: xs} }
func tensorConst(i int) operand       { return operand{kind: kTensor, i: int64(i)} }
func tensorList(xs []operand) operand { return operand{kind: kTensorList, list: xs} }

// stmt is out = op(args...).
type stmt struct {
	op   *atenOp
	args []operand
	out  int
}

// program is a lowered graph. Register 1 is the module (self); inputs
// follow from register 2.
type program struct {
	className string
	inputs    []int
	outputs   []operand
	stmts     []stmt
	consts    []any // *ir.Tensor, *packedLinear or *xnnpackLinear: CONSTANTS.c0, c1, ...
	nreg      int
}

func newProgram(className string, nInputs int) *program {
	p := &program{className: className, nreg: 1}
	for range nInputs {
		p.inputs = append(p.inputs, p.newReg())
	}
	return p
}

func (p *program) newReg() int {
	p.nreg++
	return p.nreg
}

// addTensor stores t as a constant and returns its operand.
func (p *program) addTensor(t *ir.Tensor) operand {
	p.consts = append(p.consts, t)
	return tensorConst(len(p.consts) - 1)
}

// addPacked stores packed linear weights (*packedLinear or
// *xnnpackLinear) as a constant.
func (p *program) addPacked(w any) operand {
	p.consts = append(p.consts, w)
	return tensorConst(len(p.consts) - 1)
}

// call appends out = op(args...) and returns the new register.
func (p *program) call(op *atenOp, args ...operand) operand {
	r := p.newReg()
	p.stmts = append(p.stmts, stmt{op: op, args: args, out: r})
	return reg(r)
}

// source prints the program as the TorchScript class the archive's code/
// folder holds.
func (p *program) source() (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "class %s(Module):\n  __parameters__ = []\n  __buffers__ = []\n", p.className)
	fmt.Fprintf(&b, "  def forward(self: __torch__.%s", p.className)
	for _, r := range p.inputs {
		fmt.Fprintf(&b, ",\n    v%d: Tensor", r)
	}
	fmt.Fprintf(&b, ") -> %s:\n", returnType(len(p.outputs)))
	for _, s := range p.stmts {
		fmt.Fprintf(&b, "    v%d = %s(", s.out, s.op.Fn)
		for i, a := range s.args {
			if i > 0 {
				b.WriteString(", ")
			}
			if kw := s.op.Kw[i]; kw != "" {
				b.WriteString(kw + "=")
			}
			txt, err := a.source()
			if err != nil {
				return "", fmt.Errorf("%s argument %d: %w", s.op.Name, i, err)
			}
			b.WriteString(txt)
		}
		b.WriteString(")\n")
	}
	outs := make([]string, len(p.outputs))
	for i, o := range p.outputs {
		txt, err := o.source()
		if err != nil {
			return "", fmt.Errorf("output %d: %w", i, err)
		}
		outs[i] = txt
	}
	if len(outs) == 1 {
		fmt.Fprintf(&b, "    return %s\n", outs[0])
	} else {
		fmt.Fprintf(&b, "    return (%s)\n", strings.Join(outs, ", "))
	}
	return b.String(), nil
}

func returnType(n int) string {
	if n == 1 {
		return "Tensor"
	}
	return "Tuple[" + strings.TrimSuffix(strings.Repeat("Tensor, ", n), ", ") + "]"
}

func (a operand) source() (string, error) {
	switch a.kind {
	case kReg:
		return "v" + strconv.Itoa(a.reg), nil
	case kInt:
		return strconv.FormatInt(a.i, 10), nil
	case kFloat:
		return floatSource(a.f)
	case kBool:
		if a.b {
			return "True", nil
		}
		return "False", nil
	case kStr:
		return strconv.Quote(a.s), nil
	case kNone:
		return "None", nil
	case kInts:
		parts := make([]string, len(a.ints))
		for i, x := range a.ints {
			parts[i] = strconv.FormatInt(x, 10)
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	case kTensor:
		return "CONSTANTS.c" + strconv.FormatInt(a.i, 10), nil
	case kTensorList:
		parts := make([]string, len(a.list))
		for i, x := range a.list {
			s, err := x.source()
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return "[" + strings.Join(parts, ", ") + "]", nil
	}
	return "", fmt.Errorf("operand kind %d", a.kind)
}

// floatSource prints f so TorchScript reads it back as the same float.
func floatSource(f float64) (string, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "", fmt.Errorf("non-finite float literal %v", f)
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += "."
	}
	return s, nil
}
