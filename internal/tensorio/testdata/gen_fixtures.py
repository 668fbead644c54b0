#!/usr/bin/python3
"""Regenerates the numpy-written fixtures read by tensorio's tests.

Run from anywhere with /usr/bin/python3 (numpy 1.24 at the time of writing):
    /usr/bin/python3 internal/tensorio/testdata/gen_fixtures.py
Element i (flat C index) of each fixture follows a formula the Go tests
recompute (see fixtureValue in tensorio_test.go):
    floats: i*0.5 - 3     signed ints: i - 12
    uint8:  (i*10) % 256  bool: i % 3 == 0
"""
import os
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def vals(dtype, shape):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        v = i * 0.5 - 3
    elif dt.kind == "i":
        v = i - 12
    elif dt.kind == "u":
        v = (i * 10) % 256
    elif dt.kind == "b":
        v = i % 3 == 0
    else:
        raise ValueError(dtype)
    return v.astype(dt).reshape(shape)


def save(name, arr, **kw):
    np.save(os.path.join(HERE, name), arr, **kw)


# One C-ordered fixture per supported dtype; numpy's bytes must be what
# tensorio.WriteNpy produces for the same array.
save("f32.npy", vals("<f4", (2, 3, 4)))
save("f16.npy", vals("<f2", (3, 5)))
save("f64.npy", vals("<f8", (7,)))
save("i8.npy", vals("i1", (4, 6)))
save("u8.npy", vals("u1", (2, 2, 2, 3)))
save("i32.npy", vals("<i4", (5,)))
save("i64.npy", vals("<i8", (2, 3)))
save("bool.npy", vals("?", (10,)))
save("scalar.npy", vals("<f4", ()))
save("empty.npy", vals("<f4", (0, 3)))

# Layouts and headers a reader must cope with (not byte-identical on write).
save("fortran.npy", np.asfortranarray(vals("<f4", (2, 3, 4))))
save("bigendian.npy", vals(">f4", (2, 3)))
save("bigendian_i8.npy", vals(">i8", (4,)))
with open(os.path.join(HERE, "v2.npy"), "wb") as f:
    np.lib.format.write_array(f, vals("<i4", (3, 2)), version=(2, 0))

# Unsupported dtypes: must give a clear error.
save("c64.npy", np.arange(4, dtype=np.complex64))
save("u16.npy", np.arange(4, dtype=np.uint16))

# Archives: plain (stored), compressed (deflated), and one with a bad member.
np.savez(os.path.join(HERE, "eval.npz"),
         x=vals("<f4", (1, 3, 4, 4)), labels=vals("<i8", (1,)), mask=vals("?", (2, 2)))
np.savez_compressed(os.path.join(HERE, "eval_compressed.npz"),
                    x=vals("<f4", (1, 3, 4, 4)), half=vals("<f2", (8,)))
np.savez(os.path.join(HERE, "bad_member.npz"),
         ok=vals("<f4", (2,)), x=np.arange(3, dtype=np.complex64))
