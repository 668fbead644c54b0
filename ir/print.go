package ir

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// InlineLimit is the largest constant printed element by element; larger
// ones print as a splat or a digest.
const InlineLimit = 32

// Print writes g in the textual form:
//
//	graph "deit" opset=17
//	input %0 : f32[batch,3,224,224] "input"
//	%1 = Const dense<f32[192,3,16,16] sha256:3f0a…> : f32[192,3,16,16] "w"
//	%2 = Conv %0, %1 {strides=[16, 16]} : f32[batch,192,14,14]
//	output "logits" = %2
//
// Values are numbered in the canonical topological order of Topo, attributes
// are sorted, floats print in shortest round-trip form. Parse(Print(g))
// prints back identically.
func Print(w io.Writer, g *Graph) error {
	order, err := g.Topo()
	if err != nil {
		return err
	}
	num := make(map[*Value]int, len(order))
	for i, v := range order {
		num[v] = i
	}
	var b strings.Builder
	fmt.Fprintf(&b, "graph %s opset=%d\n", strconv.Quote(g.Name), g.Opset)
	for _, k := range sortedKeys(g.Meta) {
		fmt.Fprintf(&b, "meta %s = %s\n", strconv.Quote(k), strconv.Quote(g.Meta[k]))
	}
	for _, v := range order {
		if v.Op == OpInput {
			fmt.Fprintf(&b, "input %%%d : %v %s\n", num[v], v.Type, strconv.Quote(v.Name))
			continue
		}
		fmt.Fprintf(&b, "%%%d = %s", num[v], v.Op)
		if v.Op == OpConst {
			b.WriteByte(' ')
			writeTensor(&b, v.Const)
		}
		for i, a := range v.args {
			if i == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteString(", ")
			}
			if a == nil {
				b.WriteByte('_')
			} else {
				fmt.Fprintf(&b, "%%%d", num[a])
			}
		}
		if len(v.Attrs) > 0 {
			b.WriteString(" {")
			for i, k := range v.Attrs.Keys() {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(k)
				b.WriteByte('=')
				writeAttr(&b, v.Attrs[k])
			}
			b.WriteByte('}')
		}
		fmt.Fprintf(&b, " : %v", v.Type)
		if v.Name != "" {
			b.WriteString(" " + strconv.Quote(v.Name))
		}
		b.WriteByte('\n')
	}
	for _, o := range g.Outputs {
		fmt.Fprintf(&b, "output %s = %%%d\n", strconv.Quote(o.Name), num[o.Value])
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// String returns Print's output (or the error text).
func (g *Graph) String() string {
	var b strings.Builder
	if err := Print(&b, g); err != nil {
		return "error: " + err.Error()
	}
	return b.String()
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

// FormatFloat prints a float32 in shortest round-trip form that always reads
// back as a float (it has '.', 'e', "inf" or "nan").
func FormatFloat(f float32) string {
	switch {
	case math.IsNaN(float64(f)):
		return "nan"
	case math.IsInf(float64(f), 1):
		return "inf"
	case math.IsInf(float64(f), -1):
		return "-inf"
	}
	s := strconv.FormatFloat(float64(f), 'g', -1, 32)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func writeAttr(b *strings.Builder, x any) {
	switch y := x.(type) {
	case int64:
		b.WriteString(strconv.FormatInt(y, 10))
	case float32:
		b.WriteString(FormatFloat(y))
	case string:
		b.WriteString(strconv.Quote(y))
	case []int64:
		b.WriteByte('[')
		for i, e := range y {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.FormatInt(e, 10))
		}
		b.WriteByte(']')
	case []float32:
		b.WriteByte('[')
		for i, e := range y {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(FormatFloat(e))
		}
		b.WriteByte(']')
	case []string:
		b.WriteByte('[')
		for i, e := range y {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(e))
		}
		b.WriteByte(']')
	case *Tensor:
		writeTensor(b, y)
	}
}

// writeTensor prints dense<TYPE [elems]>, dense<TYPE splat(x)> or
// dense<TYPE sha256:DIGEST>.
func writeTensor(b *strings.Builder, t *Tensor) {
	fmt.Fprintf(b, "dense<%v ", t.Type())
	n := t.Len()
	switch {
	case t.Opaque():
		b.WriteString("sha256:" + t.Digest())
	case n <= InlineLimit:
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(elemString(t, i))
		}
		b.WriteByte(']')
	case isSplat(t):
		b.WriteString("splat(" + elemString(t, 0) + ")")
	default:
		b.WriteString("sha256:" + t.Digest())
	}
	b.WriteByte('>')
}

func elemString(t *Tensor, i int) string {
	switch d := t.Data.(type) {
	case []float32:
		return FormatFloat(d[i])
	case []uint16:
		return FormatFloat(F16ToF32(d[i]))
	case []float64:
		s := strconv.FormatFloat(d[i], 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0"
		}
		return strings.ToLower(strings.TrimPrefix(s, "+"))
	case []int8:
		return strconv.Itoa(int(d[i]))
	case []uint8:
		return strconv.Itoa(int(d[i]))
	case []int32:
		return strconv.Itoa(int(d[i]))
	case []int64:
		return strconv.FormatInt(d[i], 10)
	case []bool:
		return strconv.FormatBool(d[i])
	}
	return "?"
}

func isSplat(t *Tensor) bool {
	switch d := t.Data.(type) {
	case []float32:
		return allSame(d)
	case []uint16:
		return allSame(d)
	case []float64:
		return allSame(d)
	case []int8:
		return allSame(d)
	case []uint8:
		return allSame(d)
	case []int32:
		return allSame(d)
	case []int64:
		return allSame(d)
	case []bool:
		return allSame(d)
	}
	return false
}

// allSame compares bit patterns via ==, so a NaN splat prints as a digest;
// that is rare and still round-trips.
func allSame[T comparable](xs []T) bool {
	for _, x := range xs {
		if x != xs[0] {
			return false
		}
	}
	return len(xs) > 0
}
