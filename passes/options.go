package passes

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Options structs declare their fields with tags:
//
//	Ratio  float64  `pqv:"ratio" doc:"fraction to remove" min:"0" max:"1"`
//	Method string   `pqv:"method,positional" enum:"magnitude|taylor|hessian|random" doc:"criterion"`
//	Ignore []string `pqv:"ignore" doc:"name patterns to leave alone"`
//
// Supported field types: bool, int, int64, float64, string (free or enum)
// and []string. At most one field is positional (`importance taylor`). The
// values in the struct given as Pass.Options are the defaults.

// OptionSpec describes one option, for the DSL's type checks and the docs.
type OptionSpec struct {
	Name       string
	Doc        string
	Kind       string   // "bool", "int", "float", "string", "enum" or "list"
	Enum       []string // allowed words for an enum
	Positional bool
	Min, Max   *float64 // bounds for numbers, when set
	Default    string   // the default in recipe syntax ("" for an empty string or list)
	index      []int
}

// LitKind is the syntactic kind of a recipe value.
type LitKind int

// Literal kinds.
const (
	LitIdent   LitKind = iota // bare word: taylor, true, x86
	LitString                 // "quoted"
	LitInt                    // 8
	LitFloat                  // 0.5, 1e-3
	LitPercent                // 9.375%  (Text holds the number without %)
	LitList                   // [a, "b", 3]
)

// Literal is a value as written in a recipe.
type Literal struct {
	Kind  LitKind
	Text  string
	Items []Literal // for LitList
}

func (l Literal) String() string {
	switch l.Kind {
	case LitString:
		return strconv.Quote(l.Text)
	case LitPercent:
		return l.Text + "%"
	case LitList:
		var parts []string
		for _, it := range l.Items {
			parts = append(parts, it.String())
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return l.Text
}

// optionSpecs reflects an options struct (nil: no options).
func optionSpecs(proto any) ([]OptionSpec, error) {
	if proto == nil {
		return nil, nil
	}
	rv := reflect.ValueOf(proto)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("Options must be a pointer to a struct, not %T", proto)
	}
	rv = rv.Elem()
	rt := rv.Type()
	var specs []OptionSpec
	positional := false
	for i := range rt.NumField() {
		f := rt.Field(i)
		tag, ok := f.Tag.Lookup("pqv")
		if !ok || tag == "-" {
			continue
		}
		parts := strings.Split(tag, ",")
		s := OptionSpec{Name: parts[0], Doc: f.Tag.Get("doc"), index: f.Index}
		if !isSnake(s.Name) {
			return nil, fmt.Errorf("option name %q is not snake_case", s.Name)
		}
		for _, p := range parts[1:] {
			switch p {
			case "positional":
				if positional {
					return nil, fmt.Errorf("more than one positional option")
				}
				s.Positional, positional = true, true
			default:
				return nil, fmt.Errorf("option %s: unknown tag flag %q", s.Name, p)
			}
		}
		switch f.Type.Kind() {
		case reflect.Bool:
			s.Kind = "bool"
		case reflect.Int, reflect.Int64:
			s.Kind = "int"
		case reflect.Float64:
			s.Kind = "float"
		case reflect.String:
			s.Kind = "string"
			if e := f.Tag.Get("enum"); e != "" {
				s.Kind, s.Enum = "enum", strings.Split(e, "|")
			}
		case reflect.Slice:
			if f.Type.Elem().Kind() != reflect.String {
				return nil, fmt.Errorf("option %s: unsupported type %v", s.Name, f.Type)
			}
			s.Kind = "list"
		default:
			return nil, fmt.Errorf("option %s: unsupported type %v", s.Name, f.Type)
		}
		for _, b := range []struct {
			tag string
			dst **float64
		}{{"min", &s.Min}, {"max", &s.Max}} {
			if t := f.Tag.Get(b.tag); t != "" {
				x, err := strconv.ParseFloat(t, 64)
				if err != nil {
					return nil, fmt.Errorf("option %s: bad %s tag %q", s.Name, b.tag, t)
				}
				*b.dst = &x
			}
		}
		s.Default = formatValue(rv.FieldByIndex(f.Index))
		if s.Kind == "enum" && s.Default != "" && !contains(s.Enum, s.Default) {
			return nil, fmt.Errorf("option %s: default %q is not one of %v", s.Name, s.Default, s.Enum)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Specs returns the pass's options in declaration order.
func Specs(p *Pass) []OptionSpec {
	s, _ := optionSpecs(p.Options) // validated by Register
	return s
}

// Spec returns the named option of p, or nil.
func Spec(p *Pass, name string) *OptionSpec {
	for _, s := range Specs(p) {
		if s.Name == name {
			return &s
		}
	}
	return nil
}

// Positional returns p's positional option, or nil.
func Positional(p *Pass) *OptionSpec {
	for _, s := range Specs(p) {
		if s.Positional {
			return &s
		}
	}
	return nil
}

// NewOptions returns a fresh copy of p's default options (nil if none).
func NewOptions(p *Pass) any {
	if p.Options == nil {
		return nil
	}
	src := reflect.ValueOf(p.Options).Elem()
	dst := reflect.New(src.Type())
	dst.Elem().Set(src)
	// Slices must not alias the defaults.
	for i := range src.NumField() {
		if f := dst.Elem().Field(i); f.Kind() == reflect.Slice && !f.IsNil() {
			c := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(c, f)
			f.Set(c)
		}
	}
	return dst.Interface()
}

// SetOption sets option name of opts (from NewOptions(p)) to the literal,
// checking its type, enum and bounds. The error says what was expected.
func SetOption(p *Pass, opts any, name string, lit Literal) error {
	s := Spec(p, name)
	if s == nil {
		return fmt.Errorf("pass %s has no option %q", p.Name, name)
	}
	f := reflect.ValueOf(opts).Elem().FieldByIndex(s.index)
	bad := func(want string) error {
		return fmt.Errorf("option %s of %s wants %s, got %s", name, p.Name, want, lit)
	}
	switch s.Kind {
	case "bool":
		if lit.Kind != LitIdent || lit.Text != "true" && lit.Text != "false" {
			return bad("true or false")
		}
		f.SetBool(lit.Text == "true")
	case "int":
		if lit.Kind != LitInt {
			return bad("an integer")
		}
		n, err := strconv.ParseInt(lit.Text, 10, 64)
		if err != nil {
			return bad("an integer")
		}
		if err := s.inBounds(float64(n)); err != nil {
			return err
		}
		f.SetInt(n)
	case "float":
		var x float64
		var err error
		switch lit.Kind {
		case LitInt, LitFloat:
			x, err = strconv.ParseFloat(lit.Text, 64)
		case LitPercent:
			x, err = strconv.ParseFloat(lit.Text, 64)
			x /= 100
		default:
			return bad("a number")
		}
		if err != nil {
			return bad("a number")
		}
		if err := s.inBounds(x); err != nil {
			return err
		}
		f.SetFloat(x)
	case "string":
		if lit.Kind != LitIdent && lit.Kind != LitString {
			return bad("a word or a string")
		}
		f.SetString(lit.Text)
	case "enum":
		if lit.Kind != LitIdent && lit.Kind != LitString || !contains(s.Enum, lit.Text) {
			return &EnumError{Option: name, Pass: p.Name, Got: lit.String(), Allowed: s.Enum}
		}
		f.SetString(lit.Text)
	case "list":
		items := lit.Items
		if lit.Kind != LitList {
			items = []Literal{lit} // a single value is a one-element list
		}
		var out []string
		for _, it := range items {
			switch it.Kind {
			case LitList:
				return bad("a list of words or strings")
			case LitString:
				out = append(out, it.Text)
			default:
				out = append(out, it.String()) // keeps a percentage's %
			}
		}
		f.Set(reflect.ValueOf(out))
	}
	return nil
}

// EnumError is an enum option given a word it does not allow; the DSL uses
// it to suggest the nearest allowed word.
type EnumError struct {
	Option, Pass, Got string
	Allowed           []string
}

func (e *EnumError) Error() string {
	return fmt.Sprintf("option %s of %s must be one of %s, got %s", e.Option, e.Pass, strings.Join(e.Allowed, ", "), e.Got)
}

func (s *OptionSpec) inBounds(x float64) error {
	if s.Min != nil && x < *s.Min || s.Max != nil && x > *s.Max {
		lo, hi := "-inf", "inf"
		if s.Min != nil {
			lo = strconv.FormatFloat(*s.Min, 'g', -1, 64)
		}
		if s.Max != nil {
			hi = strconv.FormatFloat(*s.Max, 'g', -1, 64)
		}
		return fmt.Errorf("option %s must be in [%s, %s], got %g", s.Name, lo, hi, x)
	}
	return nil
}

// FormatOptions returns opts' non-default values in canonical recipe form,
// positional first, then name=value in declaration order.
func FormatOptions(p *Pass, opts any) (positional string, named []string) {
	if opts == nil {
		return "", nil
	}
	rv := reflect.ValueOf(opts).Elem()
	for _, s := range Specs(p) {
		v := formatValue(rv.FieldByIndex(s.index))
		if s.Positional {
			// An empty default has no bare spelling and means the same
			// when left out.
			if !(v == `""` && v == s.Default) {
				positional = v
			}
			continue
		}
		if v != s.Default {
			named = append(named, s.Name+"="+v)
		}
	}
	return positional, named
}

// OptionValues returns every option's current value in recipe syntax.
func OptionValues(p *Pass, opts any) map[string]string {
	out := map[string]string{}
	if opts == nil {
		return out
	}
	rv := reflect.ValueOf(opts).Elem()
	for _, s := range Specs(p) {
		out[s.Name] = formatValue(rv.FieldByIndex(s.index))
	}
	return out
}

func formatValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		s := strconv.FormatFloat(v.Float(), 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0"
		}
		return s
	case reflect.String:
		if IsWord(v.String()) {
			return v.String()
		}
		return strconv.Quote(v.String())
	case reflect.Slice:
		var parts []string
		for i := range v.Len() {
			s := v.Index(i).String()
			if IsWord(s) {
				parts = append(parts, s)
			} else {
				parts = append(parts, strconv.Quote(s))
			}
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// IsWord reports whether s can be written bare in a recipe; the DSL's lexer
// accepts exactly these words.
func IsWord(s string) bool {
	if s == "" || s == "true" || s == "false" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '-') {
			continue
		}
		return false
	}
	return true
}
