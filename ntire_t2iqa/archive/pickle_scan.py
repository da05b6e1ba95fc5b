"""The pickle opcode scanner: a participant's pickle is checked just ahead of the unpickler.

It refuses, before the object is built, what would crash or stall the interpreter:
containers of any kind (tuples, lists, dicts, sets, objects) nested more than
:data:`MAX_NESTING_DEPTH` levels deep (hashing, comparing or printing one recurses in C),
data that re-uses its own parts (memo references) so often that, written out, it would
hold more than :data:`MAX_EXPANDED` objects (a few hundred bytes can otherwise stand for a
tuple that takes years to hash), a container changed after it was stored in another one
or fetched again (which would hide how deep it is), and memo indices that would make the
unpickler allocate gigabytes for a few bytes of input.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

#: Read size of the pickle scanner and buffer size in front of the unpickler: small, so that large
#: payloads (array data) bypass both and land in the unpickler's own buffers directly.
_SCAN_CHUNK = 1 << 14
#: Deepest container nesting accepted, for any mix of tuples, lists, dicts, sets and objects
#: (a submission needs about 6: dict, dict, array, the array's state, its dtype).
MAX_NESTING_DEPTH = 100
#: Most objects that the parts a pickle re-uses (memo GET, DUP) may stand for in all: what
#: hashing or comparing the data could have to visit beyond what its own opcodes built.
MAX_EXPANDED = 1 << 26
#: A LONG4 integer longer than this counts as one object per 8 bytes (its hash is not cached).
_BIG_INT_BYTES = 64
#: How far a memo index may run ahead of the number of memo entries.
_MEMO_SLACK = 1 << 16


class _BadStream(Exception):
    """Raised by :class:`_PickleScanner`. Deliberately not an ``UnpicklingError``: the C unpickler
    turns one raised while it reads an opcode into ``EOFError('Ran out of input')``."""


class _Unsafe(_BadStream):
    """A pickle refused on purpose, not a damaged one; the message says what it holds or does."""


class _TooDeep(_Unsafe):
    """Containers nested more than :data:`MAX_NESTING_DEPTH` levels."""


# What the scanner knows of one container (or big integer) on the unpickler's stack or in its
# memo, a "node": the list [depth, size, mutable, shared] (a list: cheaper to make than an object).
# depth: how deeply containers nest in it; size: how many objects it holds written out without
# sharing; mutable: a list, dict, set or object that later opcodes may fill; shared: it was stored
# in another object or fetched again, so it may not change any more. An object that holds nothing
# else is the plain 0 instead.
_DEPTH, _SIZE, _MUTABLE, _SHARED = range(4)


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
 _K_BUILD, _K_SETITEMS, _K_EFFECT, _K_EMPTY) = range(14)
_INLINE = {"PROTO": _K_NOP, "FRAME": _K_NOP, "MARK": _K_MARK, "MEMOIZE": _K_MEMOIZE, "BINGET": _K_GET,
           "EMPTY_LIST": _K_EMPTY, "EMPTY_DICT": _K_EMPTY, "EMPTY_SET": _K_EMPTY,
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

#: Opcodes that push one object that holds no other (depth 0).
_LEAF = frozenset((
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "NONE", "NEWTRUE", "NEWFALSE", "UNICODE",
    "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "GLOBAL", "PERSID", "EXT1", "EXT2",
    "EXT4", "NEXT_BUFFER",
))
#: Opcodes that push an empty list, dict or set (depth 1, filled by later opcodes).
_EMPTY = frozenset(("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"))


class _PickleScanner(io.RawIOBase):
    """Passes a pickle stream on to the unpickler only after its opcodes were checked.

    It mirrors the unpickler's stack and memo, tracking for every container how deeply
    containers nest in it and how many objects it holds written out (a node), and
    refuses nesting deeper than :data:`MAX_NESTING_DEPTH`, re-used parts that stand for
    more than :data:`MAX_EXPANDED` objects, a container changed after it was stored in
    another one or fetched again (nothing but self-referencing data does that, and it
    would hide the depth), and memo indices far beyond the memo's size (the unpickler
    would allocate and clear that many slots). Bulk data (bytes and strings)
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
        self._stack: list[Any] = []  # a node, or 0, for each object on the unpickler's stack
        self._marks: list[int] = []
        self._memo: dict[int, Any] = {}
        self._expanded = 0  # objects that the re-used parts stand for, so far

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
                        item = memo[idx]
                        if item:
                            self._fetch(item)
                        else:
                            push(0)
                    elif kind == _K_EMPTY:
                        push([1, 1, True, False])
                    elif kind == _K_TUPLE_N or kind == _K_TUPLE:  # as _contain(_top(n)) and _contain(_to_mark())
                        if kind == _K_TUPLE:
                            if not marks:
                                raise _BadStream("could not find MARK")
                            at = marks.pop()
                        else:
                            at = len(stack) - (code - 0x84)  # TUPLE1, TUPLE2, TUPLE3 are 0x85, 0x86, 0x87
                            if at < (marks[-1] if marks else 0):
                                raise _BadStream("unpickling stack underflow")
                        items = stack[at:]
                        del stack[at:]
                        push(self._contain(items, False))
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
                        self._fill_from_mark()
                    elif kind == _K_REDUCE:
                        if len(stack) - 2 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        items = stack[-2:]
                        del stack[-2:]
                        push(self._result(items))
                    elif kind == _K_BUILD:
                        if len(stack) - 2 < (marks[-1] if marks else 0):
                            raise _BadStream("unpickling stack underflow")
                        self._insert(stack, [stack.pop()])
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
            # Every length-prefixed opcode pushes a string, bytes or an integer; a long integer's hash is
            # not cached, so it counts for its length when it is re-used.
            self._stack.append([0, 1 + length // 8, False, False] if name == "LONG4" and length > _BIG_INT_BYTES
                               else 0)
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

    def _top(self, n: int) -> list[Any]:
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

    def _to_mark(self) -> list[Any]:
        if not self._marks:
            raise _BadStream("could not find MARK")
        at = self._marks.pop()
        items = self._stack[at:]
        del self._stack[at:]
        return items

    def _contain(self, items: list[Any], mutable: bool, wrap: int = 1) -> list[Any]:
        """The node of a new object that holds ``items`` (``wrap`` 0: may be one of them), which become shared."""
        depth, size = 0, wrap
        for item in items:
            if item:
                item[_SHARED] = True
                if item[_DEPTH] > depth:
                    depth = item[_DEPTH]
                size += item[_SIZE]
            else:
                size += 1
        depth += wrap
        if depth > MAX_NESTING_DEPTH:
            raise _TooDeep(f"it holds containers (tuples, lists, dicts, sets or objects) nested more than "
                           f"{MAX_NESTING_DEPTH} levels deep")
        return [depth, size or 1, mutable, False]

    def _result(self, items: list[Any]) -> list[Any]:
        """What REDUCE, NEWOBJ, OBJ and INST push: a new object that may keep (or be) any of its inputs."""
        return self._contain(items, True, wrap=0)

    def _insert(self, stack: list[Any], items: list[Any]) -> None:
        """Put ``items`` into the object on top of the stack (APPEND, SETITEM, BUILD and their batches)."""
        target = stack[-1]
        if not target or not target[_MUTABLE]:
            raise _BadStream("the pickle adds items to an object that cannot hold them")
        if target[_SHARED]:
            raise _Unsafe("it changes a list, dict, set or object after storing it in another one or fetching "
                           "it again from the memo (as only data that contains itself does)")
        node = self._contain(items, True)
        if node[_DEPTH] > target[_DEPTH]:
            target[_DEPTH] = node[_DEPTH]
        target[_SIZE] += node[_SIZE] - 1

    def _fill_from_mark(self) -> None:
        """APPENDS, SETITEMS, ADDITEMS: the items above the mark go into the object below it."""
        items = self._to_mark()
        self._need(1)
        self._insert(self._stack, items)

    def _fetch(self, item: Any) -> None:
        """Push an object once more (GET, DUP): it may not change any more, and what it holds is counted again."""
        if item:
            item[_SHARED] = True
            self._expanded += item[_SIZE]
            if self._expanded > MAX_EXPANDED:
                raise _Unsafe(f"it re-uses its own parts so often that, written out, it would hold more than "
                               f"{MAX_EXPANDED:,} objects")
        self._stack.append(item)

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
        elif name in _EMPTY:
            stack.append([1, 1, True, False])
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
            self._fetch(self._memo[idx])
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            stack.append(self._contain(self._top(int(name[-1])), False))
        elif name == "TUPLE":
            stack.append(self._contain(self._to_mark(), False))
        elif name == "EMPTY_TUPLE":
            stack.append([1, 1, False, False])
        elif name in ("APPEND", "BUILD"):
            self._need(2)
            self._insert(stack, [stack.pop()])
        elif name == "SETITEM":
            self._need(3)
            items = stack[-2:]
            del stack[-2:]
            self._insert(stack, items)
        elif name in ("APPENDS", "SETITEMS", "ADDITEMS"):
            self._fill_from_mark()
        elif name in ("LIST", "DICT", "FROZENSET"):
            stack.append(self._contain(self._to_mark(), name != "FROZENSET"))
        elif name in ("REDUCE", "NEWOBJ"):
            stack.append(self._result(self._top(2)))
        elif name == "NEWOBJ_EX":
            stack.append(self._result(self._top(3)))
        elif name in ("OBJ", "INST"):
            items = self._to_mark()
            if name == "OBJ" and not items:
                raise _BadStream("unpickling stack underflow")
            stack.append(self._result(items))
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
            self._fetch(stack[-1])
        elif name == "READONLY_BUFFER":
            self._need(1)
        elif name == "STOP":
            self._stopped = True
        elif name not in ("PROTO", "FRAME"):  # pragma: no cover - every opcode is listed above
            raise _BadStream(f"unsupported pickle opcode {name}")

