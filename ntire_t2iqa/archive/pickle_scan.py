"""The pickle opcode scanner: a participant's pickle is checked just ahead of the unpickler.

It refuses what CPython's C code would mishandle: tuples nested so deeply that hashing
them overflows the C stack, and memo indices that would make the unpickler allocate
gigabytes for a few bytes of input.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

#: Read size of the pickle scanner and buffer size in front of the unpickler: small, so that large
#: payloads (array data) bypass both and land in the unpickler's own buffers directly.
_SCAN_CHUNK = 1 << 14
#: Deepest tuple nesting accepted (a submission needs 3).
MAX_TUPLE_DEPTH = 100
#: How far a memo index may run ahead of the number of memo entries.
_MEMO_SLACK = 1 << 16


class _BadStream(Exception):
    """Raised by :class:`_PickleScanner`. Deliberately not an ``UnpicklingError``: the C unpickler
    turns one raised while it reads an opcode into ``EOFError('Ran out of input')``."""


class _TooDeep(_BadStream):
    """Tuples nested more than :data:`MAX_TUPLE_DEPTH` levels."""


def _opcode_table() -> dict[int, tuple[str, int, str, bool]]:
    """opcode byte -> (argument kind, size, name, pushes a leaf) from :mod:`pickletools`."""
    import pickletools

    kinds = {pickletools.UP_TO_NEWLINE: ("line", 0), pickletools.TAKEN_FROM_ARGUMENT1: ("len", 1),
             pickletools.TAKEN_FROM_ARGUMENT4: ("slen", 4), pickletools.TAKEN_FROM_ARGUMENT4U: ("len", 4),
             pickletools.TAKEN_FROM_ARGUMENT8U: ("len", 8)}
    table = {}
    for op in pickletools.opcodes:
        arg = op.arg
        if arg is None:
            kind, size = "fixed", 0
        elif arg.name == "stringnl_noescape_pair":
            kind, size = "lines2", 0
        elif arg.n >= 0:
            kind, size = "fixed", arg.n
        else:
            kind, size = kinds[arg.n]
        table[op.code.encode("latin-1")[0]] = (kind, size, op.name, op.name in _LEAF)
    return table


_OPCODES: dict[int, tuple[str, int, str, bool]] | None = None

# How the scanner's inner loop treats each opcode byte (see _PickleScanner._advance): generic
# (through _scan), a leaf with a fixed-size argument, a length-prefixed payload, or one of the
# frequent stack and memo operations handled inline with the same checks as _effect.
(_K_GENERIC, _K_LEAF, _K_PAYLOAD, _K_NOP, _K_MARK, _K_MEMOIZE, _K_GET, _K_TUPLE_N, _K_TUPLE, _K_REDUCE,
 _K_BUILD, _K_SETITEMS, _K_EFFECT) = range(13)
_INLINE = {"PROTO": _K_NOP, "FRAME": _K_NOP, "MARK": _K_MARK, "MEMOIZE": _K_MEMOIZE, "BINGET": _K_GET,
           "LONG_BINGET": _K_GET, "TUPLE1": _K_TUPLE_N, "TUPLE2": _K_TUPLE_N, "TUPLE3": _K_TUPLE_N, "TUPLE": _K_TUPLE,
           "REDUCE": _K_REDUCE, "NEWOBJ": _K_REDUCE, "BUILD": _K_BUILD, "APPEND": _K_BUILD, "SETITEMS": _K_SETITEMS,
           "APPENDS": _K_SETITEMS, "ADDITEMS": _K_SETITEMS}
_FAST: tuple[tuple[int, ...], tuple[int, ...], tuple[str, ...]] | None = None


def _fast_table(ops: dict[int, tuple[str, int, str, bool]]) -> tuple[tuple[int, ...], tuple[int, ...],
                                                                     tuple[str, ...]]:
    """Per opcode byte: (kind, bytes up to the payload or end, name), for :meth:`_PickleScanner._advance`."""
    kinds, sizes, names = [_K_GENERIC] * 256, [1] * 256, [""] * 256
    for code, (kind, size, name, leaf) in ops.items():
        names[code] = name
        if kind == "fixed":
            sizes[code] = 1 + size
            if leaf:
                kinds[code] = _K_LEAF
            elif name in _INLINE:
                kinds[code] = _INLINE[name]
            elif size == 0:
                kinds[code] = _K_EFFECT
        elif kind == "len":  # unsigned length: never negative
            sizes[code] = 1 + size
            kinds[code] = _K_PAYLOAD
    return tuple(kinds), tuple(sizes), tuple(names)

#: Opcodes that push one object that is not a tuple (depth 0).
_LEAF = frozenset((
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NONE", "NEWTRUE", "NEWFALSE", "UNICODE",
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "EMPTY_LIST", "EMPTY_DICT",
    "EMPTY_SET", "GLOBAL", "PERSID", "EXT1", "EXT2", "EXT4", "NEXT_BUFFER",
))


class _PickleScanner(io.RawIOBase):
    """Passes a pickle stream on to the unpickler only after its opcodes were checked.

    It mirrors the unpickler's stack, tracking for every object how deeply tuples nest
    in it, and refuses a tuple nested deeper than :data:`MAX_TUPLE_DEPTH` (hashing one
    recurses in C without a limit) and memo indices far beyond the memo's size (the
    unpickler would allocate and clear that many slots). Bulk data (bytes and strings)
    streams through unscanned. Stack errors that the unpickler would also raise are
    raised here first, so the two never disagree about what is on the stack.
    """

    def __init__(self, raw: BinaryIO):
        global _OPCODES, _FAST
        if _OPCODES is None or _FAST is None:
            table = _opcode_table()  # idempotent: a race only builds the same tables twice
            _FAST, _OPCODES = _fast_table(table), table
        self._ops = _OPCODES
        self._fast = _FAST
        self._raw = raw
        self._readinto = getattr(raw, "readinto", None)
        self._buf = bytearray()  # read from raw, not yet handed on
        self._safe = 0  # bytes at the start of _buf that were checked
        self._skip = 0  # payload bytes still to pass through unchecked
        self._eof = False
        self._stopped = False
        self._stack: list[int] = []  # tuple depth of each object on the unpickler's stack
        self._marks: list[int] = []
        self._memo: dict[int, int] = {}

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        if not len(view):
            return 0
        if self._skip and not self._buf and self._readinto is not None and not self._eof:
            # Inside a payload with nothing buffered: read it straight into the caller's buffer.
            n = self._readinto(view[:min(len(view), self._skip)])
            if not n:
                self._eof = self._stopped = True  # the input ends inside a payload: the unpickler finds it truncated
                return 0
            self._skip -= n
            return n
        while self._safe == 0:
            if self._stopped or (self._eof and not self._buf):
                return 0
            self._advance(len(view))
        n = min(len(view), self._safe)
        view[:n] = self._buf[:n]
        del self._buf[:n]
        self._safe -= n
        return n

    def _fill(self, need: int) -> bool:
        """Read at least ``need`` more bytes unless the input ends; False at the end."""
        got = 0
        while got < need:
            data = self._raw.read(max(need - got, _SCAN_CHUNK))
            if not data:
                self._eof = True
                return got > 0
            self._buf += data
            got += len(data)
        return True

    def _advance(self, want: int) -> None:
        """Check more of the input: up to about ``want`` bytes, at least one opcode or payload chunk."""
        buf = self._buf
        if self._skip:
            if len(buf) == self._safe and not self._fill(min(self._skip, max(_SCAN_CHUNK, min(want, 1 << 22)))):
                self._stopped = True  # the input ends inside a payload: the unpickler will find it truncated
                return
            take = min(self._skip, len(buf) - self._safe)
            self._safe += take
            self._skip -= take
            return
        stack, marks, memo = self._stack, self._marks, self._memo
        push = stack.append
        kinds, sizes, names = self._fast
        pos = self._safe
        stop_at = pos + want
        n = len(buf)
        while pos < stop_at:
            # Fast paths for the frequent opcodes, with the same checks as _scan and _effect.
            if pos < n:
                code = buf[pos]
                kind = kinds[code]
                end = pos + sizes[code]
                if kind and end <= n:
                    if kind == _K_MEMOIZE:
                        if len(stack) - 1 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        memo[len(memo)] = stack[-1]
                    elif kind == _K_LEAF:
                        push(0)
                    elif kind == _K_GET:
                        idx = int.from_bytes(buf[pos + 1:end], "little")
                        if idx not in memo:
                            raise _BadStream(f"Memo value not found at index {idx}")
                        push(memo[idx])
                    elif kind == _K_TUPLE_N or kind == _K_TUPLE:  # as _tuple(_top(n)) and _tuple(_to_mark())
                        if kind == _K_TUPLE:
                            if not marks:
                                raise _BadStream("could not find MARK")
                            at = marks.pop()
                        else:
                            at = len(stack) - (code - 0x84)  # TUPLE1, TUPLE2, TUPLE3 are 0x85, 0x86, 0x87
                            if at < (marks[-1] if marks else 0):
                                raise _BadStream("unpickling stack underflow")
                        depth = 1 + max(stack[at:], default=0)
                        if depth > MAX_TUPLE_DEPTH:
                            raise _TooDeep(f"tuples nested more than {MAX_TUPLE_DEPTH} levels deep")
                        del stack[at:]
                        push(depth)
                    elif kind == _K_MARK:
                        marks.append(len(stack))
                    elif kind == _K_PAYLOAD:
                        push(0)  # a string, bytes or an integer
                        end += int.from_bytes(buf[pos + 1:end], "little")
                        if end > n:
                            self._skip = end - n  # the rest of the payload streams through unscanned
                            pos = n
                            break
                    elif kind == _K_SETITEMS:
                        if not marks:
                            raise _BadStream("could not find MARK")
                        del stack[marks.pop():]
                        if len(stack) - 1 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                    elif kind == _K_REDUCE:  # the result may be one of the arguments
                        if len(stack) - 2 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        push(max(stack.pop(), stack.pop()))
                    elif kind == _K_BUILD:
                        if len(stack) - 2 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        stack.pop()
                    elif kind == _K_EFFECT:
                        self._effect(names[code], None)
                        if self._stopped:
                            pos = end
                            break
                    pos = end  # _K_NOP: PROTO and FRAME change nothing
                    continue
            end = self._scan(pos)
            if end is None:  # incomplete opcode: read more
                if self._eof or not self._fill(_SCAN_CHUNK):
                    # The input ends inside an opcode's argument; the unpickler will fail on it.
                    pos = len(buf)
                    self._stopped = True
                    break
                n = len(buf)
                continue
            pos = end
            if self._stopped or self._skip:
                break
        self._safe = pos
        if self._stopped:
            del self._buf[self._safe:]  # nothing after STOP is handed on

    def _scan(self, pos: int) -> int | None:
        """Check the opcode at ``pos``; return where it ends, or ``None`` if it is not all read yet."""
        buf = self._buf
        if pos >= len(buf):
            return None
        code = buf[pos]
        entry = self._ops.get(code)
        if entry is None:
            raise _BadStream(f"invalid load key, {bytes([code])!r}.")
        kind, size, name, leaf = entry
        end = pos + 1
        if kind == "fixed":
            end += size
            if end > len(buf):
                return None
            if leaf:
                self._stack.append(0)
                return end
            arg: Any = bytes(buf[pos + 1:end]) if size else None
        elif kind == "len" or kind == "slen":
            end += size
            if end > len(buf):
                return None
            length = int.from_bytes(buf[pos + 1:end], "little", signed=kind == "slen")
            if length < 0:
                raise _BadStream(f"{name} has a negative length")
            self._stack.append(0)  # every length-prefixed opcode pushes a string, bytes or an integer
            if end + length <= len(buf):
                return end + length
            self._skip = end + length - len(buf)  # the rest of the payload streams through unscanned
            return len(buf)
        else:
            nl = buf.find(b"\n", pos + 1)
            if kind == "lines2" and nl >= 0:
                nl = buf.find(b"\n", nl + 1)
            if nl < 0:
                return None
            arg = bytes(buf[pos + 1:nl])
            end = nl + 1
        self._effect(name, arg)
        return end

    def _top(self, n: int) -> list[int]:
        """Pop ``n`` objects above the current mark (as the unpickler, which fails below it)."""
        fence = self._marks[-1] if self._marks else 0
        if len(self._stack) - n < fence or n < 0:
            raise _BadStream("unpickling stack underflow")
        if n == 0:
            return []
        items = self._stack[-n:]
        del self._stack[-n:]
        return items

    def _need(self, n: int) -> None:
        fence = self._marks[-1] if self._marks else 0
        if len(self._stack) - n < fence:
            raise _BadStream("unpickling stack underflow")

    def _to_mark(self) -> list[int]:
        if not self._marks:
            raise _BadStream("could not find MARK")
        at = self._marks.pop()
        items = self._stack[at:]
        del self._stack[at:]
        return items

    def _tuple(self, items: list[int]) -> None:
        depth = 1 + max(items, default=0)
        if depth > MAX_TUPLE_DEPTH:
            raise _TooDeep(f"tuples nested more than {MAX_TUPLE_DEPTH} levels deep")
        self._stack.append(depth)

    def _memo_index(self, name: str, arg: bytes) -> int:
        if name in ("PUT", "GET"):
            try:
                return int(arg)
            except ValueError:
                raise _BadStream(f"bad {name} argument") from None
        return int.from_bytes(arg, "little")

    def _effect(self, name: str, arg: Any) -> None:  # noqa: C901 - one branch per opcode family
        stack = self._stack
        if name in _LEAF:
            stack.append(0)
        elif name == "MARK":
            self._marks.append(len(stack))
        elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE"):
            self._need(1)
            idx = len(self._memo) if name == "MEMOIZE" else self._memo_index(name, arg)
            if idx < 0 or idx > len(self._memo) + _MEMO_SLACK:
                raise _BadStream(f"memo index {idx} is out of range")
            self._memo[idx] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            idx = self._memo_index(name, arg)
            if idx not in self._memo:
                raise _BadStream(f"Memo value not found at index {idx}")
            stack.append(self._memo[idx])
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            self._tuple(self._top(int(name[-1])))
        elif name == "TUPLE":
            self._tuple(self._to_mark())
        elif name == "EMPTY_TUPLE":
            stack.append(1)
        elif name in ("APPEND", "BUILD"):
            self._need(2)
            stack.pop()
        elif name == "SETITEM":
            self._need(3)
            del stack[-2:]
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            self._to_mark()
            self._need(1)
        elif name in ("LIST", "DICT", "FROZENSET"):
            self._to_mark()
            stack.append(0)
        elif name in ("REDUCE", "NEWOBJ"):
            stack.append(max(self._top(2)))  # the result may be one of the arguments
        elif name == "NEWOBJ_EX":
            stack.append(max(self._top(3)))
        elif name in ("OBJ", "INST"):
            items = self._to_mark()
            if name == "OBJ" and not items:
                raise _BadStream("unpickling stack underflow")
            stack.append(max(items, default=0))
        elif name == "STACK_GLOBAL":
            self._top(2)
            stack.append(0)
        elif name == "BINPERSID":
            self._top(1)
            stack.append(0)
        elif name == "POP":
            if self._marks and self._marks[-1] == len(stack):
                self._marks.pop()
            else:
                self._top(1)
        elif name == "POP_MARK":
            self._to_mark()
        elif name == "DUP":
            self._need(1)
            stack.append(stack[-1])
        elif name == "READONLY_BUFFER":
            self._need(1)
        elif name == "STOP":
            self._stopped = True
        elif name not in ("PROTO", "FRAME"):  # pragma: no cover - every opcode is listed above
            raise _BadStream(f"unsupported pickle opcode {name}")

