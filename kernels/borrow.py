"""Borrowed array views for hot loops.

Numba reference-counts every array it passes to a function that it does not inline: an atomic
increment before the call and a decrement after. In a fault path that calls a dozen helpers
with a dozen arrays each, that traffic cost more than the work (42% of a 4 KiB-fault run,
measured with perf). An entry kernel owns its arrays for the whole call, so inside it the
counting is pointless: ``borrow`` gives the same array with a null meminfo, which turns each
increment and decrement into a null check. A borrowed view must never outlive the call that
made it (never returned, stored or captured), which the kernels guarantee by construction.
"""
from llvmlite import ir as llvmir
from numba.core import cgutils, types
from numba.extending import intrinsic


@intrinsic
def borrow(typingctx, arr):
    """The same array, not reference-counted (see the module docstring)."""
    def codegen(context, builder, sig, args):
        src = context.make_array(sig.args[0])(context, builder, args[0])
        dst = context.make_array(sig.return_type)(context, builder)
        for name in ("parent", "nitems", "itemsize", "data", "shape", "strides"):
            setattr(dst, name, getattr(src, name))
        dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
        return dst._getvalue()
    return arr(arr), codegen


@intrinsic
def prefetch(typingctx, arr, idx):
    """A hint to the host CPU to start loading ``arr[idx]`` (llvm.prefetch, read, keep in cache);
    no effect on any result."""
    def codegen(context, builder, sig, args):
        aryty = sig.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p = llvmir.IntType(8).as_pointer()
        fn = cgutils.get_or_insert_function(
            builder.module, llvmir.FunctionType(llvmir.VoidType(),
                                                [i8p, llvmir.IntType(32), llvmir.IntType(32),
                                                 llvmir.IntType(32)]), "llvm.prefetch.p0")
        i32 = llvmir.IntType(32)
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()
    return types.none(arr, idx), codegen


@intrinsic
def borrow_state(typingctx, state):
    """The same ``State`` tuple with every array borrowed (see ``borrow``): passing it down a hot
    path then costs no reference counting."""
    members = state.types

    def codegen(context, builder, sig, args):
        tup = args[0]
        out = cgutils.get_null_value(context.get_value_type(sig.return_type))
        for i, ty in enumerate(members):
            src = context.make_array(ty)(context, builder, builder.extract_value(tup, i))
            dst = context.make_array(ty)(context, builder)
            for name in ("parent", "nitems", "itemsize", "data", "shape", "strides"):
                setattr(dst, name, getattr(src, name))
            dst.meminfo = cgutils.get_null_value(dst.meminfo.type)
            out = builder.insert_value(out, dst._getvalue(), i)
        return out
    return state(state), codegen
