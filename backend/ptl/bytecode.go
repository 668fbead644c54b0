package ptl

import (
	"fmt"
	"strconv"
)

// bytecodeVersion is the mobile bytecode version written; torch 1.13 writes
// and reads 8.
const bytecodeVersion = 8

// bytecodeWriter builds one method's tables for bytecode.pkl.
type bytecodeWriter struct {
	p         *program
	tensor    func(i int) any // pickled form of stored tensor i
	instrs    pyTuple
	ops       pyTuple
	opIndex   map[string]int
	consts    pyTuple
	constIdx  map[string]int
	types     pyTuple
	remaining map[int]int // uses of each register not yet pushed
}

func (w *bytecodeWriter) emit(code string, x, n int) {
	w.instrs = append(w.instrs, pyTuple{code, x, n})
}

func (w *bytecodeWriter) constant(key string, v any) int {
	if i, ok := w.constIdx[key]; ok {
		return i
	}
	w.consts = append(w.consts, v)
	w.constIdx[key] = len(w.consts) - 1
	return len(w.consts) - 1
}

func (w *bytecodeWriter) countUses(a operand) {
	switch a.kind {
	case kReg:
		w.remaining[a.reg]++
	case kTensorList:
		for _, x := range a.list {
			w.countUses(x)
		}
	}
}

// push puts a on the stack. A register's last use moves it out, so the
// interpreter frees tensors as soon as nothing needs them.
func (w *bytecodeWriter) push(a operand) error {
	switch a.kind {
	case kReg:
		w.remaining[a.reg]--
		if w.remaining[a.reg] == 0 {
			w.emit("MOVE", a.reg, 0)
		} else {
			w.emit("LOAD", a.reg, 0)
		}
	case kInt:
		w.emit("LOADC", w.constant("i"+strconv.FormatInt(a.i, 10), a.i), 0)
	case kFloat:
		w.emit("LOADC", w.constant("f"+strconv.FormatFloat(a.f, 'g', -1, 64), a.f), 0)
	case kBool:
		w.emit("LOADC", w.constant("b"+strconv.FormatBool(a.b), a.b), 0)
	case kStr:
		w.emit("LOADC", w.constant("s"+a.s, a.s), 0)
	case kNone:
		w.emit("LOADC", w.constant("none", pyNone{}), 0)
	case kInts:
		key := "l" + fmt.Sprint(a.ints)
		items := make(pyList, len(a.ints))
		for i, x := range a.ints {
			items[i] = x
		}
		list := pyReduce{Func: pyGlobal{"torch.jit._pickle", "build_intlist"}, Args: pyTuple{items}}
		w.emit("LOADC", w.constant(key, list), 0)
	case kTensor:
		w.emit("LOADC", w.constant("t"+strconv.FormatInt(a.i, 10), w.tensor(int(a.i))), 0)
	case kTensorList:
		for _, x := range a.list {
			if err := w.push(x); err != nil {
				return err
			}
		}
		w.types = append(w.types, "List[Tensor]")
		w.emit("LIST_CONSTRUCT", len(w.types)-1, len(a.list))
	default:
		return fmt.Errorf("operand kind %d", a.kind)
	}
	return nil
}

// bytecode returns the bytecode.pkl value for the program's forward method.
func (p *program) bytecode(tensor func(i int) any) (any, error) {
	w := &bytecodeWriter{p: p, tensor: tensor, opIndex: map[string]int{}, constIdx: map[string]int{}, remaining: map[int]int{}}
	for _, s := range p.stmts {
		for _, a := range s.args {
			w.countUses(a)
		}
	}
	for _, o := range p.outputs {
		w.countUses(o)
	}
	// Arguments arrive on the stack as (self, inputs...); store them all,
	// then drop self and any input nothing reads.
	w.emit("STOREN", 1, 1+len(p.inputs))
	w.emit("DROPR", 1, 0)
	for _, r := range p.inputs {
		if w.remaining[r] == 0 {
			w.emit("DROPR", r, 0)
		}
	}
	for _, s := range p.stmts {
		for _, a := range s.args {
			if err := w.push(a); err != nil {
				return nil, fmt.Errorf("%s: %w", s.op.Name, err)
			}
		}
		key := s.op.Name + "." + s.op.Overload + "/" + strconv.Itoa(len(s.args))
		idx, ok := w.opIndex[key]
		if !ok {
			w.ops = append(w.ops, pyTuple{s.op.Name, s.op.Overload, len(s.args)})
			idx = len(w.ops) - 1
			w.opIndex[key] = idx
		}
		w.emit("OP", idx, 0)
		w.emit("STORE", s.out, 0)
		if w.remaining[s.out] == 0 {
			w.emit("DROPR", s.out, 0)
		}
	}
	for _, o := range p.outputs {
		if err := w.push(o); err != nil {
			return nil, fmt.Errorf("output: %w", err)
		}
	}
	if len(p.outputs) != 1 {
		w.emit("TUPLE_CONSTRUCT", len(p.outputs), 0)
	}
	w.emit("RET", 0, 0)

	arg := func(name, typ string) pyTuple {
		return pyTuple{pyTuple{"name", name}, pyTuple{"type", typ}, pyTuple{"default_value", pyNone{}}}
	}
	args := pyTuple{arg("self", "__torch__."+p.className)}
	for _, r := range p.inputs {
		args = append(args, arg("v"+strconv.Itoa(r), "Tensor"))
	}
	schema := pyTuple{
		pyTuple{"arguments", args},
		pyTuple{"returns", pyTuple{arg("", returnType(len(p.outputs)))}},
	}
	code := pyTuple{
		pyTuple{"instructions", w.instrs},
		pyTuple{"operators", w.ops},
		pyTuple{"constants", w.consts},
		pyTuple{"types", w.types},
		pyTuple{"register_size", p.nreg},
	}
	method := pyTuple{"__torch__." + p.className + ".forward", code, schema}
	return pyTuple{bytecodeVersion, method}, nil
}
