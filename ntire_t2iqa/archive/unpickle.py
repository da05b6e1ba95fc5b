"""The restricted unpickler: an allow-list of names, and numpy objects rebuilt from validated parts.

Loading a participant's pickle must never run code and never crash the interpreter.
Three layers:

1. ``find_class`` resolves only an allow-list of names; everything else is refused
   before it is called.
2. numpy arrays, dtypes and scalars are rebuilt by our own code from validated parts
   (``numpy.dtype`` and ``ndarray.__setstate__`` accept flag bits and object layouts
   with which a crafted pickle crashes numpy).
3. :class:`~.pickle_scan._PickleScanner` reads the opcode stream just ahead of the
   unpickler and refuses what CPython's C code would mishandle (see :mod:`.pickle_scan`).
"""

from __future__ import annotations

import io
import pickle
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from ..errors import SubmissionError, error
from .messages import _one_line
from .pickle_scan import _SCAN_CHUNK, _BadStream, _PickleScanner, _Unsafe

#: Largest placeholder that ``_reconstruct`` may allocate before its state is set.
_MAX_PLACEHOLDER_BYTES = 1 << 16
#: dtype kinds that may be reconstructed: bool, integers, floats, complex, strings.
_DTYPE_KINDS = "biufcUS"


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode`` that numpy pickles of protocol < 3 need; text codecs only."""
    if not isinstance(obj, str) or not isinstance(encoding, str) or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode may only encode text with a text codec")
    if encoding.lower().replace("-", "").replace("_", "") not in ("latin1", "iso88591", "utf8", "ascii"):
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return obj.encode(encoding, errors)


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` inside a pickle: usable by ``_reconstruct``, not callable itself."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError("numpy.ndarray may not be called directly")


class _DtypeSpec:
    """Stands for a ``numpy.dtype`` inside a pickle; turned into a real dtype only after validation.

    A real dtype would receive the pickle's ``__setstate__`` (flag bits included), which
    can make numpy treat raw bytes as object pointers.
    """

    __slots__ = ("args", "state")

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def resolve(self) -> Any:
        """The validated numpy dtype: a plain bool/number/string dtype, byte order from the state."""
        args = self.args
        if not (isinstance(args, tuple) and 1 <= len(args) <= 3 and isinstance(args[0], str)):
            raise pickle.UnpicklingError("bad numpy dtype arguments")
        spec = args[0]
        state = self.state
        if state is None:
            return _plain_dtype(spec)
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[0] in (3, 4)):
            raise pickle.UnpicklingError("unsupported numpy dtype state")
        endian, subarray, names, fields, elsize = state[1:6]
        if subarray is not None or names is not None or fields is not None:
            raise pickle.UnpicklingError("structured numpy dtypes are not allowed")
        if endian not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError("bad numpy dtype byte order")
        if spec in ("U", "S") and isinstance(elsize, int) and not isinstance(elsize, bool) and elsize > 0:
            spec = f"U{elsize // 4}" if spec == "U" else f"S{elsize}"  # old numpy: the size lives in the state
        dtype = _plain_dtype(spec)
        if endian in "<>" and dtype.itemsize > 1 and dtype.kind != "S":
            dtype = dtype.newbyteorder(endian)
        return dtype


#: Validated dtypes by their string spec (a pickle of many arrays names the same few specs again and again).
_DTYPES: dict[str, Any] = {}


def _plain_dtype(spec: Any) -> Any:
    """``numpy.dtype(spec)`` for a string or dtype spec, refused unless plain and non-empty."""
    import numpy as np

    if isinstance(spec, _DtypeSpec):
        return spec.resolve()
    if isinstance(spec, bytes):
        spec = spec.decode("ascii")
    if type(spec) is str and spec in _DTYPES:
        return _DTYPES[spec]
    if not isinstance(spec, str) or len(spec) > 16:
        raise pickle.UnpicklingError("bad numpy dtype")
    try:
        dtype = np.dtype(spec)
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"bad numpy dtype {spec!r}") from exc
    if dtype.kind not in _DTYPE_KINDS or dtype.hasobject or dtype.fields is not None \
            or dtype.subdtype is not None or dtype.itemsize == 0:
        raise pickle.UnpicklingError(f"numpy dtype {str(dtype)!r} is not allowed (plain numbers only)")
    if type(spec) is str and len(_DTYPES) < 256:
        _DTYPES[spec] = dtype
    return dtype


def _shape(shape: Any) -> tuple[int, ...]:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise pickle.UnpicklingError("bad numpy array shape")
    return shape


def _safe_array_class() -> type:
    import numpy as np

    class _SafeArray(np.ndarray):
        """A numpy array whose pickle state is validated before numpy sees it."""

        __slots__ = ()

        def __setstate__(self, state: Any) -> None:
            if not isinstance(state, tuple) or len(state) not in (4, 5):
                raise pickle.UnpicklingError("bad numpy array state")
            version = state[0] if len(state) == 5 else 0
            shape, dtype, fortran, data = state[-4:]
            if version not in (0, 1) or not isinstance(fortran, (bool, int)):
                raise pickle.UnpicklingError("bad numpy array state")
            shape = _shape(shape)
            dtype = _plain_dtype(dtype)
            if not isinstance(data, (bytes, bytearray)):
                raise pickle.UnpicklingError("numpy array data must be bytes")
            items = 1
            for dim in shape:
                items *= dim
            if items * dtype.itemsize != len(data):
                raise pickle.UnpicklingError("numpy array data does not match its shape")
            np.ndarray.__setstate__(self, (1, shape, dtype, bool(fortran), bytes(data)))
            hook = getattr(_ARRAY_HOOK, "hook", None)
            if hook is not None:
                hook(self.view(np.ndarray))

    return _SafeArray


#: The ``on_array`` callback of the :func:`load_pickle_restricted` call running in this thread.
_ARRAY_HOOK = threading.local()


_SAFE_ARRAY: type | None = None


def _safe_reconstruct(subtype: Any, shape: Any, dtype: Any) -> Any:
    """``numpy`` array reconstruction restricted to plain ndarrays with a tiny placeholder shape."""
    import numpy as np

    if subtype is not _NdarrayToken:
        raise pickle.UnpicklingError("only numpy.ndarray may be reconstructed")
    shape = _shape(shape)
    dtype = _plain_dtype(dtype)
    items = 1
    for dim in shape:
        items *= dim
    if items * dtype.itemsize > _MAX_PLACEHOLDER_BYTES:
        raise pickle.UnpicklingError("array placeholder too large")
    assert _SAFE_ARRAY is not None
    return np.ndarray.__new__(_SAFE_ARRAY, shape, dtype)


def _safe_scalar(dtype: Any, data: Any = None) -> Any:
    """``numpy.core.multiarray.scalar``: one number or string of a plain dtype from its bytes."""
    import numpy as np

    dtype = _plain_dtype(dtype)
    if not isinstance(data, (bytes, bytearray)) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("bad numpy scalar data")
    return np.frombuffer(bytes(data), dtype=dtype)[0]


def _safe_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> Any:
    """``numpy.core.numeric._frombuffer`` (protocol-5 arrays) for plain dtypes only."""
    import numpy as np

    dtype = _plain_dtype(dtype)
    shape = _shape(shape)
    if isinstance(buf, pickle.PickleBuffer):
        buf = buf.raw()
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise pickle.UnpicklingError("numpy array data must be bytes")
    if order not in ("C", "F", "A", "K"):
        raise pickle.UnpicklingError("bad numpy array order")
    if len(buf) % dtype.itemsize:
        raise pickle.UnpicklingError("numpy array data does not match its dtype")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if order == "F" else "C")


def _safe_bytearray(*args: Any) -> bytearray:
    """``bytearray`` from bytes or text only (never from a size, which would allocate)."""
    if len(args) > 2 or (args and not isinstance(args[0], (bytes, str))) or \
            (len(args) == 2 and not isinstance(args[1], str)):
        raise pickle.UnpicklingError("bytearray may only be built from bytes or text")
    return bytearray(*args)


def _safe_bytes(*args: Any) -> bytes:
    """``bytes()`` as pickles of protocol < 3 write it (empty, or text and a codec); never from a size."""
    if not args:
        return b""
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    if 1 <= len(args) <= 3 and isinstance(args[0], str):
        return _latin1_encode(*args)
    raise pickle.UnpicklingError("bytes may only be built from bytes or text")


def _safe_complex(*args: Any) -> complex:
    if len(args) > 2 or not all(isinstance(a, (int, float)) for a in args):
        raise pickle.UnpicklingError("complex may only be built from numbers")
    return complex(*args)


def _allowed_globals() -> dict[tuple[str, str], Any]:
    import collections

    global _SAFE_ARRAY
    if _SAFE_ARRAY is None:
        _SAFE_ARRAY = _safe_array_class()
    table: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
        ("numpy", "ndarray"): _NdarrayToken,
        ("numpy", "dtype"): _DtypeSpec,
    }
    for mod in ("builtins", "__builtin__"):
        table.update({(mod, "set"): set, (mod, "frozenset"): frozenset, (mod, "bytearray"): _safe_bytearray,
                      (mod, "bytes"): _safe_bytes,
                      (mod, "complex"): _safe_complex})
    for mod in ("numpy.core", "numpy._core"):
        table[(f"{mod}.multiarray", "_reconstruct")] = _safe_reconstruct
        table[(f"{mod}.multiarray", "scalar")] = _safe_scalar
        table[(f"{mod}.numeric", "_frombuffer")] = _safe_frombuffer
    return table


_ALLOWED: dict[tuple[str, str], Any] | None = None


_ALLOWED_LOCK = threading.Lock()


def _allowed() -> dict[tuple[str, str], Any]:
    global _ALLOWED
    if _ALLOWED is None:
        with _ALLOWED_LOCK:
            if _ALLOWED is None:
                _ALLOWED = _allowed_globals()
    return _ALLOWED


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that reconstructs only plain containers, numbers, strings and numpy arrays."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102
        try:
            return _allowed()[(module, name)]
        except (KeyError, TypeError):
            raise _Refused(f"{module}.{name}") from None


class _Refused(pickle.UnpicklingError):
    def __init__(self, qualname: str):
        super().__init__(qualname)
        self.qualname = qualname


def _plain_arrays(obj: Any) -> Any:
    """Replace the loader's array subclass by plain ndarrays in (nested) dicts, iteratively."""
    import numpy as np

    safe = _SAFE_ARRAY
    if safe is None:
        return obj
    if isinstance(obj, safe):
        return obj.view(np.ndarray)
    todo = [obj] if isinstance(obj, dict) else []
    seen: set[int] = set()
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        for key, value in item.items():
            if isinstance(value, safe):
                item[key] = value.view(np.ndarray)
            elif isinstance(value, dict):
                todo.append(value)
    return obj


PICKLE_FIX = (
    "Pickle only a dict of dicts with plain numbers and numpy arrays: "
    "`pickle.dump({name: {'score': float(s), 'pred_area': mask.astype(np.uint8)}}, f)`."
)


def load_pickle_restricted(stream: BinaryIO, where: str,
                           on_array: Callable[[Any], None] | None = None, scan: bool = True) -> Any:
    """Unpickle from a stream with :class:`RestrictedUnpickler`; any refusal is a :class:`SubmissionError`.

    Nothing named in the pickle runs unless it is on the allow-list, and numpy objects are
    rebuilt from validated parts. With ``scan`` (the default, and always for a participant's
    file) the opcode stream is also checked as it is read (see :class:`_PickleScanner`),
    which stops streams crafted to exhaust memory or crash the interpreter; the organizer's
    own reference is loaded without that pass. ``on_array`` is called with each array
    rebuilt from its pickled state (a plain ndarray view of it), right after its data was
    read: while the data is still in the processor's cache.
    """
    _allowed()  # builds the table and the array class
    scanner = io.BufferedReader(_PickleScanner(stream), buffer_size=_SCAN_CHUNK) if scan else stream
    outer = getattr(_ARRAY_HOOK, "hook", None)
    _ARRAY_HOOK.hook = on_array
    try:
        return _plain_arrays(RestrictedUnpickler(scanner).load())
    except SubmissionError:
        raise
    except _Refused as exc:
        hint = ""
        if exc.qualname.startswith("torch"):
            hint = " (a torch tensor: convert it with `.cpu().numpy()`)"
        raise SubmissionError([error(where, f"refused to load: the pickle asks for {exc.qualname!r}{hint}, which "
                                     "is not allowed; nothing in it was run.", PICKLE_FIX)]) from None
    except _Unsafe as exc:
        raise SubmissionError([error(where, f"refused to load: {exc}; nothing in it was run.",
                                     PICKLE_FIX)]) from None
    except _BadStream as exc:
        raise SubmissionError([error(where, f"is not a readable pickle ({_one_line(exc)}).", PICKLE_FIX)]) from None
    except MemoryError:
        raise SubmissionError([error(where, "is not a readable pickle: it asks for more memory than is available.",
                                     PICKLE_FIX)]) from None
    except Exception as exc:  # noqa: BLE001 - whatever a malformed pickle raises, it is the pickle's fault
        raise SubmissionError([error(where, f"is not a readable pickle ({type(exc).__name__}: {_one_line(exc)}).",
                                     PICKLE_FIX)]) from None
    finally:
        _ARRAY_HOOK.hook = outer
