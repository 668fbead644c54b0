package ptl

// The aten operator overloads the lowering calls. Name and overload are what
// the Lite interpreter looks up; Fn is how TorchScript source spells the
// call (TorchScript resolves the overload from the argument types, and the
// choice must agree with Overload).

func aten(name, overload string, kw ...string) *atenOp {
	op := &atenOp{Name: "aten::" + name, Overload: overload, Fn: "torch." + name}
	// kw lists "position=name" pairs for keyword-only arguments.
	for i := 0; i+1 < len(kw); i += 2 {
		if op.Kw == nil {
			op.Kw = map[int]string{}
		}
		op.Kw[int(kw[i][0]-'0')] = kw[i+1]
	}
	return op
}

var (
	opAdd        = aten("add", "Tensor")
	opSub        = aten("sub", "Tensor")
	opMul        = aten("mul", "Tensor")
	opDiv        = aten("div", "Tensor")
	opDivMode    = aten("div", "Tensor_mode", "2", "rounding_mode")
	opPow        = aten("pow", "Tensor_Tensor")
	opMaximum    = aten("maximum", "")
	opMinimum    = aten("minimum", "")
	opFmod       = aten("fmod", "Tensor")
	opRemainder  = aten("remainder", "Tensor")
	opRemainderS = aten("remainder", "Scalar")
	opEq         = aten("eq", "Tensor")
	opLt         = aten("lt", "Tensor")
	opGt         = aten("gt", "Tensor")
	opLe         = aten("le", "Tensor")
	opGe         = aten("ge", "Tensor")
	opAnd        = aten("logical_and", "")
	opOr         = aten("logical_or", "")
	opXor        = aten("logical_xor", "")
	opWhere      = aten("where", "self")

	opGelu       = aten("gelu", "", "1", "approximate")
	opLeakyRelu  = aten("leaky_relu", "")
	opClamp      = aten("clamp", "")
	opClampT     = aten("clamp", "Tensor")
	opTo         = aten("to", "dtype")
	opMatmul     = aten("matmul", "")
	opLinear     = aten("linear", "")
	opConv1d     = aten("conv1d", "")
	opConv2d     = aten("conv2d", "")
	opPad        = aten("constant_pad_nd", "")
	opSoftmax    = aten("softmax", "int")
	opLogSoftmax = aten("log_softmax", "int")
	opLayerNorm  = aten("layer_norm", "")
	opMean       = aten("mean", "dim")
	opSum        = aten("sum", "dim_IntList")
	opAmax       = aten("amax", "")
	opAmin       = aten("amin", "")

	opReshape     = aten("reshape", "")
	opExpand      = aten("expand", "")
	opPermute     = aten("permute", "")
	opTranspose   = aten("transpose", "int")
	opCat         = aten("cat", "")
	opSlice       = aten("slice", "Tensor")
	opSelect      = aten("select", "int")
	opIndexSelect = aten("index_select", "")
	opRepeat      = aten("repeat", "")
	opRound       = aten("round", "")
	opNeg         = aten("neg", "")
)

// unaryOps are elementwise IR ops with a one-argument aten twin.
var unaryOps = map[string]*atenOp{
	"Sqrt": aten("sqrt", ""), "Erf": aten("erf", ""), "Relu": aten("relu", ""), "Neg": opNeg,
	"Exp": aten("exp", ""), "Log": aten("log", ""), "Tanh": aten("tanh", ""), "Sigmoid": aten("sigmoid", ""),
	"Abs": aten("abs", ""), "Reciprocal": aten("reciprocal", ""), "Floor": aten("floor", ""),
	"Ceil": aten("ceil", ""), "Round": opRound, "Sign": aten("sign", ""), "Not": aten("logical_not", ""),
	"Sin": aten("sin", ""), "Cos": aten("cos", ""),
}

// binaryOps are broadcasting IR ops with a two-tensor aten twin (Div and
// Mod depend on the dtype and are lowered separately).
var binaryOps = map[string]*atenOp{
	"Add": opAdd, "Sub": opSub, "Mul": opMul, "Pow": opPow, "Max": opMaximum, "Min": opMinimum,
	"Equal": opEq, "Less": opLt, "Greater": opGt, "LessOrEqual": opLe, "GreaterOrEqual": opGe,
	"And": opAnd, "Or": opOr, "Xor": opXor,
}
