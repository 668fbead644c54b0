package ptl

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
)

// A small writer for Python pickle protocol 2, the dialect TorchScript
// archives use for data.pkl, constants.pkl and bytecode.pkl. Values are Go
// values of the types below; the writer does no memoisation because torch's
// unpickler does not need it.

// pyNone is Python's None.
type pyNone struct{}

// pyTuple is a Python tuple.
type pyTuple []any

// pyList is a Python list.
type pyList []any

// pyGlobal is a class or function reference (GLOBAL opcode).
type pyGlobal struct{ Module, Name string }

// pyReduce calls Func with Args (REDUCE opcode).
type pyReduce struct {
	Func any
	Args pyTuple
}

// pyPersistent is a persistent id (BINPERSID), how tensors name their storage.
type pyPersistent struct{ ID pyTuple }

// pyObject is Class() followed by BUILD with State, as torch pickles script
// module objects (data.pkl) and TorchBind objects such as packed weights.
type pyObject struct {
	Class pyGlobal
	State any // nil: an empty dict (a frozen module has no attributes)
}

// Pickle opcodes used here (see CPython's Lib/pickletools.py).
const (
	opProto      = 0x80
	opStop       = '.'
	opNone       = 'N'
	opTrue       = 0x88
	opFalse      = 0x89
	opBinInt1    = 'K'
	opBinInt2    = 'M'
	opBinInt     = 'J'
	opLong1      = 0x8a
	opBinFloat   = 'G'
	opBinUnicode = 'X'
	opMark       = '('
	opTuple      = 't'
	opEmptyTuple = ')'
	opTuple1     = 0x85
	opTuple2     = 0x86
	opTuple3     = 0x87
	opEmptyList  = ']'
	opAppends    = 'e'
	opEmptyDict  = '}'
	opSetItems   = 'u'
	opGlobal     = 'c'
	opReduce     = 'R'
	opBinPersID  = 'Q'
	opNewObj     = 0x81
	opBuild      = 'b'
)

// pickle serialises v as a protocol-2 pickle.
func pickle(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte(opProto)
	b.WriteByte(2)
	if err := pickleValue(&b, v); err != nil {
		return nil, err
	}
	b.WriteByte(opStop)
	return b.Bytes(), nil
}

func pickleValue(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil, pyNone:
		b.WriteByte(opNone)
	case bool:
		if x {
			b.WriteByte(opTrue)
		} else {
			b.WriteByte(opFalse)
		}
	case int:
		pickleInt(b, int64(x))
	case int64:
		pickleInt(b, x)
	case float64:
		b.WriteByte(opBinFloat)
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], math.Float64bits(x))
		b.Write(buf[:])
	case string:
		b.WriteByte(opBinUnicode)
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(len(x)))
		b.Write(buf[:])
		b.WriteString(x)
	case pyTuple:
		return pickleTuple(b, x)
	case pyList:
		b.WriteByte(opEmptyList)
		if len(x) == 0 {
			return nil
		}
		b.WriteByte(opMark)
		for _, e := range x {
			if err := pickleValue(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(opAppends)
	case pyGlobal:
		b.WriteByte(opGlobal)
		b.WriteString(x.Module + "\n" + x.Name + "\n")
	case pyReduce:
		if err := pickleValue(b, x.Func); err != nil {
			return err
		}
		if err := pickleTuple(b, x.Args); err != nil {
			return err
		}
		b.WriteByte(opReduce)
	case pyPersistent:
		if err := pickleTuple(b, x.ID); err != nil {
			return err
		}
		b.WriteByte(opBinPersID)
	case pyObject:
		if err := pickleValue(b, x.Class); err != nil {
			return err
		}
		b.WriteByte(opEmptyTuple)
		b.WriteByte(opNewObj)
		if x.State == nil {
			b.WriteByte(opEmptyDict)
		} else if err := pickleValue(b, x.State); err != nil {
			return err
		}
		b.WriteByte(opBuild)
	default:
		return fmt.Errorf("pickle: cannot pickle %T", v)
	}
	return nil
}

func pickleInt(b *bytes.Buffer, x int64) {
	switch {
	case x >= 0 && x < 1<<8:
		b.WriteByte(opBinInt1)
		b.WriteByte(byte(x))
	case x >= 0 && x < 1<<16:
		b.WriteByte(opBinInt2)
		b.WriteByte(byte(x))
		b.WriteByte(byte(x >> 8))
	case x >= math.MinInt32 && x <= math.MaxInt32:
		b.WriteByte(opBinInt)
		var buf [4]byte
		binary.LittleEndian.PutUint32(buf[:], uint32(int32(x)))
		b.Write(buf[:])
	default:
		// LONG1: little-endian two's complement; 8 bytes always suffice.
		b.WriteByte(opLong1)
		b.WriteByte(8)
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], uint64(x))
		b.Write(buf[:])
	}
}

func pickleTuple(b *bytes.Buffer, t pyTuple) error {
	if len(t) == 0 {
		b.WriteByte(opEmptyTuple)
		return nil
	}
	if len(t) > 3 {
		b.WriteByte(opMark)
	}
	for _, e := range t {
		if err := pickleValue(b, e); err != nil {
			return err
		}
	}
	switch len(t) {
	case 1:
		b.WriteByte(opTuple1)
	case 2:
		b.WriteByte(opTuple2)
	case 3:
		b.WriteByte(opTuple3)
	default:
		b.WriteByte(opTuple)
	}
	return nil
}
