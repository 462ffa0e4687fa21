"""The coarse search pass: int8 codes of the vectors, scanned with one int8 matmul."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import onnxruntime as ort

# Codes are int8 in [-127, 127] with one scale per vector (max |x| / 127):
# a per-vector scale keeps a vector with one large component as accurate as
# the rest, whatever the model's embedding geometry.
CODE_MAX = 127
# The query is quantized to 7 bits and shifted to unsigned (q + 64 in
# [1, 127]): onnxruntime's u8 x s8 kernels are its fast ones, and 7 bits
# keep the pairwise sums inside int16 on CPUs without VNNI (AVX2's
# vpmaddubsw saturates at 32767: 2 * 127 * 127 = 32258 fits).
QUERY_MAX = 63
QUERY_SHIFT = 64
# Added to the score of free slots and of vectors outside a filter.
EXCLUDED = float("-inf")


def quantize(mat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 codes [n, D], scales [n] (float32) and code sums [n] (int32)
    of unit vectors [n, D]; x ~ code * scale. Zero rows get zero codes."""
    import numpy as np

    mat = np.asarray(mat, dtype=np.float32).reshape(len(mat), -1)
    peak = np.abs(mat).max(axis=1) if mat.size else np.zeros(len(mat), np.float32)
    scales = (peak / CODE_MAX).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0).astype(np.float32)
    codes = np.clip(np.rint(mat / safe[:, None]), -CODE_MAX, CODE_MAX).astype(np.int8)
    sums = codes.sum(axis=1, dtype=np.int32)
    return codes, scales, sums


def quantize_query(query: np.ndarray) -> tuple[np.ndarray, float]:
    """The query as unsigned 7-bit codes [1, D] and its scale."""
    import numpy as np

    query = np.asarray(query, dtype=np.float32).ravel()
    peak = float(np.abs(query).max()) if query.size else 0.0
    scale = peak / QUERY_MAX if peak > 0 else 1.0
    q = np.clip(np.rint(query / scale), -QUERY_MAX, QUERY_MAX) + QUERY_SHIFT
    return q.astype(np.uint8)[None, :], scale


# A hand-encoded ONNX graph (onnx the package is a training dependency, not a
# runtime one). Protocol-buffer field numbers are those of onnx.proto3.
_FLOAT, _UINT8, _INT8, _INT32, _INT64 = 1, 2, 3, 6, 7
_OPSET = 13
_IR_VERSION = 7


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str | int) -> bytes:
    """One protobuf field: varint (wire type 0) or length-delimited (2)."""
    if isinstance(payload, int):
        return _varint(number << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: tuple[int | str, ...]) -> bytes:
    shape = b"".join(
        _field(1, _field(1, d) if isinstance(d, int) else _field(2, d)) for d in dims
    )
    tensor_type = _field(1, elem_type) + _field(2, shape)
    return _field(1, name) + _field(2, _field(1, tensor_type))


def _node(op: str, inputs: list[str], outputs: list[str], **ints: int) -> bytes:
    attrs = b"".join(
        _field(5, _field(1, key) + _field(3, value) + _field(20, 2))  # type INT
        for key, value in ints.items()
    )
    return (
        b"".join(_field(1, i) for i in inputs)
        + b"".join(_field(2, o) for o in outputs)
        + _field(3, f"{op}_{outputs[0]}")
        + _field(4, op)
        + attrs
    )


def scan_graph() -> bytes:
    """ModelProto bytes: the top-k of (q . codes - 64 * sums) * scales + bias.

    Inputs: q uint8 [1, D]; codes int8 [D, N] (dimension-major, so the
    matmul reads each code row once); offsets int32 [N] (64 * code sums);
    scales, bias float32 [N]; k int64 [1]. Outputs: values, indices [1, k].
    """
    nodes = [
        _node("MatMulInteger", ["q", "codes"], ["dots"]),
        _node("Sub", ["dots", "offsets"], ["centred"]),
        _node("Cast", ["centred"], ["dots_f"], to=_FLOAT),
        _node("Mul", ["dots_f", "scales"], ["scaled"]),
        _node("Add", ["scaled", "bias"], ["scores"]),
        _node("TopK", ["scores", "k"], ["values", "indices"]),
    ]
    inputs = [
        _value_info("q", _UINT8, (1, "D")),
        _value_info("codes", _INT8, ("D", "N")),
        _value_info("offsets", _INT32, ("N",)),
        _value_info("scales", _FLOAT, ("N",)),
        _value_info("bias", _FLOAT, ("N",)),
        _value_info("k", _INT64, (1,)),
    ]
    outputs = [
        _value_info("values", _FLOAT, (1, "K")),
        _value_info("indices", _INT64, (1, "K")),
    ]
    graph = (
        b"".join(_field(1, n) for n in nodes)
        + _field(2, "clap_coarse_scan")
        + b"".join(_field(11, i) for i in inputs)
        + b"".join(_field(12, o) for o in outputs)
    )
    return (
        _field(1, _IR_VERSION)
        + _field(2, "beets-clap")
        + _field(7, graph)
        + _field(8, _field(1, "") + _field(2, _OPSET))
    )


_SESSION: ort.InferenceSession | None = None
_THREADS = 0


def set_threads(threads: int) -> None:
    """Intra-op threads of the scan (the plugin's `clap.threads`); 0 lets
    onnxruntime use one per physical core."""
    global _SESSION, _THREADS
    threads = max(0, int(threads))
    if threads != _THREADS:
        _THREADS, _SESSION = threads, None


def _session() -> ort.InferenceSession:
    """One session per process. The scan reads every code once and the rest
    of the search waits for it, so it gets the cores (docs/benchmarks.md,
    "Text quantization", has the measurement). Built with the model's
    session options."""
    global _SESSION
    if _SESSION is None:
        import onnxruntime as ort

        from .model import session_options

        _SESSION = ort.InferenceSession(
            scan_graph(),
            sess_options=session_options(_THREADS),
            providers=["CPUExecutionProvider"],
        )
    return _SESSION


def scan(
    query: np.ndarray,
    codes: np.ndarray,
    offsets: np.ndarray,
    scales: np.ndarray,
    bias: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions [<=k] of the best approximate scores and the scores,
    best first; excluded positions (bias -inf) never come back."""
    import numpy as np

    n = codes.shape[1]
    k = max(0, min(int(k), n))
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    q, q_scale = quantize_query(query)
    feed: dict[str, Any] = {
        "q": q,
        "codes": codes,
        "offsets": offsets,
        "scales": scales,
        "bias": bias,
        "k": np.array([k], np.int64),
    }
    values, indices = _session().run(["values", "indices"], feed)
    values, indices = values[0], indices[0]
    keep = np.isfinite(values)
    return indices[keep], values[keep] * np.float32(q_scale)


class CoarseIndex:
    """Every chunk's codes in memory, side by side: codes [D, chunks * slots].

    Built from the store's chunk blobs and refreshed chunk by chunk when
    their version changes, so a process that searches many times (a
    playlist run, a long-lived beets) reads the codes once. Free slots
    hold id 0 and are excluded through `bias`.
    """

    def __init__(self, dim: int, slots: int, chunks: list[int]) -> None:
        import numpy as np

        self.dim, self.slots = dim, slots
        self.chunks = list(chunks)
        self.versions: dict[int, int] = {}
        n = len(chunks) * slots
        self.codes = np.zeros((dim, n), np.int8)
        self.ids = np.zeros(n, np.int64)
        self.offsets = np.zeros(n, np.int32)
        self.scales = np.zeros(n, np.float32)
        self.bias = np.full(n, EXCLUDED, np.float32)
        self._where = {chunk: i for i, chunk in enumerate(chunks)}
        self._positions: np.ndarray | None = None

    def __len__(self) -> int:
        return int((self.ids > 0).sum())

    def fill(
        self,
        chunk: int,
        version: int,
        ids: bytes,
        scales: bytes,
        sums: bytes,
        codes: bytes,
    ) -> None:
        """Copy one chunk's blobs into place."""
        import numpy as np

        span = slice(
            self._where[chunk] * self.slots, (self._where[chunk] + 1) * self.slots
        )
        self.ids[span] = np.frombuffer(ids, np.int64)
        self.scales[span] = np.frombuffer(scales, np.float32)
        self.offsets[span] = np.frombuffer(sums, np.int32) * QUERY_SHIFT
        self.codes[:, span] = np.frombuffer(codes, np.int8).reshape(
            self.dim, self.slots
        )
        self.bias[span] = np.where(self.ids[span] > 0, 0.0, EXCLUDED)
        self.versions[chunk] = version
        self._positions = None

    def _positions_of(self, item_ids: np.ndarray) -> np.ndarray:
        """Positions of the given item ids that are in the index."""
        import numpy as np

        used = np.flatnonzero(self.ids > 0)
        if not len(used) or not len(item_ids):
            return np.zeros(0, np.int64)
        top = int(self.ids[used].max())
        if top <= 8 * len(used) + (1 << 20):
            # beets ids are dense (autoincrement): a direct table is fastest.
            if self._positions is None:
                table = np.full(top + 1, -1, np.int64)
                table[self.ids[used]] = used
                self._positions = table
            ok = item_ids[(item_ids > 0) & (item_ids <= top)]
            pos = self._positions[ok]
            return pos[pos >= 0]
        order = used[np.argsort(self.ids[used])]
        found = np.searchsorted(self.ids[order], item_ids)
        found = np.minimum(found, len(order) - 1)
        hit = self.ids[order[found]] == item_ids
        return order[found[hit]]

    def top(
        self, query: np.ndarray, k: int, candidates: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Item ids of the k best approximate scores (and the scores),
        among `candidates` (item ids) when given."""
        import numpy as np

        bias = self.bias
        if candidates is not None:
            pos = self._positions_of(np.asarray(candidates, np.int64))
            bias = np.full(len(self.bias), EXCLUDED, np.float32)
            bias[pos] = self.bias[pos]
        pos, approx = scan(query, self.codes, self.offsets, self.scales, bias, k)
        return self.ids[pos], approx
