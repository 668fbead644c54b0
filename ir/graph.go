package ir

import (
	"fmt"
	"slices"
)

// Special ops that are not computations.
const (
	OpInput = "Input" // a graph input; Name is the input's name
	OpConst = "Const" // a constant; data in Value.Const
)

// Output is a named graph output.
type Output struct {
	Name  string
	Value *Value
}

// Graph is a function from named inputs to named outputs.
type Graph struct {
	Name    string
	Inputs  []*Value // Op == OpInput, in signature order
	Outputs []Output
	// Opset is the ONNX opset the graph came from (informational; the IR's
	// semantics are those of opset 17).
	Opset int
	// Meta carries producer information and other model metadata through.
	Meta map[string]string

	values []*Value // every live value, in creation order
	dirty  bool     // values holds removed entries
	nextID int
}

// NewGraph returns an empty graph.
func NewGraph(name string) *Graph { return &Graph{Name: name, Opset: 17} }

func (g *Graph) add(v *Value) *Value {
	g.nextID++
	v.ID = g.nextID
	v.graph = g
	g.values = append(g.values, v)
	return v
}

// AddInput appends a graph input.
func (g *Graph) AddInput(name string, t Type) *Value {
	v := g.add(&Value{Op: OpInput, Name: name, Type: t})
	g.Inputs = append(g.Inputs, v)
	return v
}

// AddConst adds a constant holding t (shared, not copied).
func (g *Graph) AddConst(name string, t *Tensor) *Value {
	return g.add(&Value{Op: OpConst, Name: name, Type: t.Type(), Const: t})
}

// Add appends a value computed by op from args and infers its type. Unknown
// ops, wrong arity and bad attributes are errors naming the value.
func (g *Graph) Add(op, name string, attrs Attrs, args ...*Value) (*Value, error) {
	def := LookupOp(op)
	if def == nil {
		return nil, fmt.Errorf("%s %q: unknown op", op, name)
	}
	v := &Value{Op: op, Name: name, Attrs: attrs}
	v.args = slices.Clone(args)
	if err := def.checkArgs(v); err != nil {
		return nil, fmt.Errorf("%s: %w", v, err)
	}
	t, err := def.Infer(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v, err)
	}
	v.Type = t
	for _, a := range v.args {
		if a != nil {
			a.uses = append(a.uses, v)
		}
	}
	return g.add(v), nil
}

// AddTyped appends a value with a given type, without inference. The parser
// uses it so that Verify, not the parser, reports a type that disagrees with
// inference.
func (g *Graph) AddTyped(op, name string, t Type, attrs Attrs, args ...*Value) *Value {
	v := &Value{Op: op, Name: name, Attrs: attrs, Type: t}
	v.args = slices.Clone(args)
	for _, a := range v.args {
		if a != nil {
			a.uses = append(a.uses, v)
		}
	}
	return g.add(v)
}

// Reinfer recomputes v's type from its args and attributes; passes call it
// after changing an argument's shape.
func (g *Graph) Reinfer(v *Value) error {
	def := LookupOp(v.Op)
	if def == nil {
		return fmt.Errorf("%s: unknown op", v)
	}
	if v.Op == OpInput || v.Op == OpConst {
		if v.Const != nil {
			v.Type = v.Const.Type()
		}
		return nil
	}
	t, err := def.Infer(v)
	if err != nil {
		return fmt.Errorf("%s: %w", v, err)
	}
	v.Type = t
	return nil
}

// SetOutput sets (or adds) the output called name.
func (g *Graph) SetOutput(name string, v *Value) {
	for i, o := range g.Outputs {
		if o.Name == name {
			g.Outputs[i].Value = v
			return
		}
	}
	g.Outputs = append(g.Outputs, Output{Name: name, Value: v})
}

// Remove deletes v, which must have no users and not be a graph output.
func (g *Graph) Remove(v *Value) error {
	if len(v.uses) > 0 {
		return fmt.Errorf("remove %s: still used by %s", v, v.uses[0])
	}
	for _, o := range g.Outputs {
		if o.Value == v {
			return fmt.Errorf("remove %s: it is graph output %q", v, o.Name)
		}
	}
	if v.Op == OpInput {
		return fmt.Errorf("remove %s: it is a graph input", v)
	}
	for i := range v.args {
		if a := v.args[i]; a != nil {
			a.removeUse(v)
		}
	}
	v.args = nil
	v.graph = nil
	g.dirty = true
	return nil
}

// Values returns all live values in creation order.
func (g *Graph) Values() []*Value {
	if g.dirty {
		g.values = slices.DeleteFunc(g.values, func(v *Value) bool { return v.graph != g })
		g.dirty = false
	}
	return g.values
}

// Len is the number of live values.
func (g *Graph) Len() int { return len(g.Values()) }

// Topo returns the live values in a canonical topological order: a depth-first
// post-order from the outputs (arguments in order), then any value the outputs
// do not reach, in creation order. The order depends only on the graph's
// structure, not on how it was built, so dumps are stable. Inputs come first.
// It returns an error if the graph has a cycle.
func (g *Graph) Topo() ([]*Value, error) {
	const (
		unseen = iota
		onStack
		done
	)
	state := make(map[*Value]uint8, len(g.values))
	order := make([]*Value, 0, len(g.values))
	for _, in := range g.Inputs {
		state[in] = done
		order = append(order, in)
	}
	type frame struct {
		v *Value
		i int
	}
	var stack []frame
	visit := func(root *Value) error {
		if root == nil || state[root] != unseen {
			return nil
		}
		stack = append(stack[:0], frame{root, 0})
		state[root] = onStack
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			if f.i < len(f.v.args) {
				a := f.v.args[f.i]
				f.i++
				if a == nil {
					continue
				}
				switch state[a] {
				case unseen:
					state[a] = onStack
					stack = append(stack, frame{a, 0})
				case onStack:
					return fmt.Errorf("cycle through %s", a)
				}
				continue
			}
			state[f.v] = done
			order = append(order, f.v)
			stack = stack[:len(stack)-1]
		}
		return nil
	}
	for _, o := range g.Outputs {
		if err := visit(o.Value); err != nil {
			return nil, err
		}
	}
	for _, v := range g.Values() {
		if err := visit(v); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// Clone returns a deep copy of the graph structure. Constant tensors are
// shared: they are immutable by convention.
func (g *Graph) Clone() *Graph {
	h := &Graph{Name: g.Name, Opset: g.Opset, nextID: g.nextID}
	if g.Meta != nil {
		h.Meta = make(map[string]string, len(g.Meta))
		for k, v := range g.Meta {
			h.Meta[k] = v
		}
	}
	m := make(map[*Value]*Value, len(g.values))
	for _, v := range g.Values() {
		w := &Value{ID: v.ID, Op: v.Op, Type: Type{v.Type.DType, v.Type.Shape.Clone()}, Name: v.Name, Attrs: v.Attrs.Clone(), Const: v.Const, graph: h}
		m[v] = w
		h.values = append(h.values, w)
	}
	for _, v := range g.values {
		w := m[v]
		w.args = make([]*Value, len(v.args))
		for i, a := range v.args {
			if a != nil {
				w.args[i] = m[a]
				m[a].uses = append(m[a].uses, w)
			}
		}
	}
	for _, in := range g.Inputs {
		h.Inputs = append(h.Inputs, m[in])
	}
	for _, o := range g.Outputs {
		h.Outputs = append(h.Outputs, Output{Name: o.Name, Value: m[o.Value]})
	}
	return h
}

// Find returns the live value with the given source name, or nil.
func (g *Graph) Find(name string) *Value {
	for _, v := range g.Values() {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// RemoveDead deletes values that no output depends on; it returns how many.
func (g *Graph) RemoveDead() int {
	live := make(map[*Value]bool)
	var stack []*Value
	for _, o := range g.Outputs {
		stack = append(stack, o.Value)
	}
	for _, in := range g.Inputs {
		live[in] = true
	}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if v == nil || live[v] && v.Op != OpInput {
			continue
		}
		live[v] = true
		stack = append(stack, v.args...)
	}
	n := 0
	vals := slices.Clone(g.Values())
	// Remove users before their arguments so every Remove sees no uses.
	for i := len(vals) - 1; i >= 0; i-- {
		if v := vals[i]; !live[v] {
			for _, a := range v.args {
				if a != nil {
					a.removeUse(v)
				}
			}
			v.args, v.uses, v.graph = nil, nil, nil
			g.dirty = true
			n++
		}
	}
	return n
}

// BindInputs gives every symbolic dim of g's inputs the value n (the
// batch, in a ViT) and re-infers every value's type, so that the graph is
// specialised to static shapes. Backends that need static shapes call it
// on a clone.
func (g *Graph) BindInputs(n int64) error {
	for _, in := range g.Inputs {
		sh := make(Shape, len(in.Type.Shape)) // a fresh slice: clones may share shapes
		for i, d := range in.Type.Shape {
			b, err := d.Bind(n)
			if err != nil {
				return fmt.Errorf("input %q: dim %d: %w", in.Name, i, err)
			}
			sh[i] = b
		}
		in.Type = TensorType(in.Type.DType, sh)
	}
	order, err := g.Topo()
	if err != nil {
		return err
	}
	for _, v := range order {
		if v.Op == OpInput || v.Op == OpConst {
			continue
		}
		if err := g.Reinfer(v); err != nil {
			return fmt.Errorf("binding the batch to %d: %v: %w", n, v, err)
		}
	}
	return nil
}
