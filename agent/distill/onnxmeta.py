"""Read small scalar initialisers (quantisation parameters) out of an ONNX file.

onnxruntime does not expose a graph's initialisers, and the ``onnx`` package is a large
dependency for reading four scalars, so this walks the protobuf wire format directly:
``ModelProto.graph`` (field 7) → ``GraphProto.initializer`` (field 5) → ``TensorProto``
(``data_type`` 2, ``name`` 8, ``raw_data`` 9, ``float_data`` 4, ``int32_data`` 5).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from agent.errors import UserError

_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64}


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i


def _fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value = buf[i : i + n]
            i += n
        elif wire == 5:
            value = buf[i : i + 4]
            i += 4
        elif wire == 1:
            value = buf[i : i + 8]
            i += 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def scalar_initialisers(path: str | Path, names: set[str]) -> dict[str, float]:
    """Values of the named scalar initialisers of an ONNX model file.

    Parameters
    ----------
    path : str or Path
        The ``.onnx`` file (initialisers stored inline; large external tensors are skipped).
    names : set of str
        Initialiser names to read.

    Returns
    -------
    dict
        ``name -> float`` for each name found.
    """
    try:
        buf = Path(path).read_bytes()
        graphs = [v for f, w, v in _fields(buf) if f == 7 and w == 2]
    except (OSError, IndexError, ValueError) as exc:
        raise UserError(f"{path}: not a readable ONNX model ({exc})") from None
    found: dict[str, float] = {}
    for graph in graphs:
        assert isinstance(graph, bytes)
        for field, wire, tensor in _fields(graph):
            if field != 5 or wire != 2:
                continue
            assert isinstance(tensor, bytes)
            name, dtype, raw = "", 1, b""
            floats: list[float] = []
            ints: list[int] = []
            for f, _w, v in _fields(tensor):
                if f == 8 and isinstance(v, bytes):
                    name = v.decode("utf-8", "replace")
                elif f == 2 and isinstance(v, int):
                    dtype = v
                elif f == 9 and isinstance(v, bytes):
                    raw = v
                elif f == 4:
                    floats.extend(
                        struct.unpack(f"<{len(v) // 4}f", v) if isinstance(v, bytes) else []
                    )
                elif f == 5 and isinstance(v, int):
                    ints.append(v)
            if name not in names:
                continue
            if raw and dtype in _DTYPES:
                found[name] = float(np.frombuffer(raw, dtype=_DTYPES[dtype])[0])
            elif floats:
                found[name] = floats[0]
            elif ints:
                found[name] = float(ints[0])
    return found
