"""Read TensorFlow (TF1 "V2" format) checkpoints without TensorFlow.

A checkpoint is `PREFIX.index` + `PREFIX.data-00000-of-00001`. The index is a
LevelDB-style SSTable whose values are `BundleEntryProto` messages (dtype,
shape, shard, offset, size, crc32c) pointing into the data shards. We decode
the table and the few protobuf fields we need by hand, so that musicnn's
pretrained weights load with numpy alone (TensorFlow 1 does not install next
to numpy 2 / Python 3.11).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes crc
# tensorflow/core/framework/types.proto -> numpy dtype (little-endian bundles).
_DTYPES = {
    1: np.float32,
    2: np.float64,
    3: np.int32,
    4: np.uint8,
    5: np.int16,
    6: np.int8,
    9: np.int64,
    10: np.bool_,
    14: np.uint16,  # bfloat16 bit patterns; callers convert if they need to
    17: np.uint16,
    19: np.float16,
}


class CheckpointError(Exception):
    """A checkpoint that cannot be read; the message names the file and why."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at `pos`; return (value, next position)."""
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Split a protobuf message into (field number, value) pairs.

    Varints come back as int, length-delimited fields as bytes, fixed32/64
    as int; that is all BundleEntryProto and TensorShapeProto use.
    """
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        out.append((number, value))
    return out


def _block_entries(data: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """Decode one SSTable block: prefix-compressed keys, restart array at the end."""
    block = data[offset : offset + size]
    if data[offset + size] != 0:
        raise ValueError("compressed SSTable blocks are not supported")
    (num_restarts,) = struct.unpack_from("<I", block, size - 4)
    end = size - 4 - 4 * num_restarts
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_len, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def _table_entries(index: bytes) -> list[tuple[bytes, bytes]]:
    """All (key, value) pairs of an SSTable, via its footer and index block."""
    if len(index) < _FOOTER_SIZE:
        raise ValueError("file too short for an SSTable")
    footer = index[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)
    if magic != _TABLE_MAGIC:
        raise ValueError("bad SSTable magic number")
    _, pos = _varint(footer, 0)  # metaindex handle: offset ...
    _, pos = _varint(footer, pos)  # ... and size (unused)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    entries = []
    for _, handle in _block_entries(index, index_offset, index_size):
        block_offset, pos = _varint(handle, 0)
        block_size, _ = _varint(handle, pos)
        entries.extend(_block_entries(index, block_offset, block_size))
    return entries


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for number, value in _proto_fields(buf):
        if number == 2:  # repeated Dim dim
            size = 0
            for dim_number, dim_value in _proto_fields(value):  # type: ignore[arg-type]
                if dim_number == 1:
                    size = dim_value  # type: ignore[assignment]
            dims.append(size)
    return tuple(dims)


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE: list[int] = []


def masked_crc32c(data: bytes) -> int:
    """TensorFlow's masked CRC-32C of `data` (as stored in BundleEntryProto).

    Pure Python, so only used when verification is asked for.
    """
    if not _CRC_TABLE:
        _CRC_TABLE.extend(_crc32c_table())
    table, crc = _CRC_TABLE, 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_checkpoint(
    prefix: Path | str, *, verify: bool = False, skip_optimizer: bool = True
) -> dict[str, np.ndarray]:
    """Return every tensor of the checkpoint at `prefix` as {name: array}.

    `prefix` is what TensorFlow's Saver was given: musicnn stores its files as
    `MTT_musicnn/.index`, so the folder path with a trailing separator (or
    the folder itself) works. Adam slots (`.../Adam`, `.../Adam_1`) and the
    beta powers are skipped unless `skip_optimizer` is False: they triple the
    size and nothing outside training them needs them. `verify` checks each
    tensor's CRC-32C (slow: pure Python).
    """
    prefix = Path(prefix)
    index_path = prefix / ".index" if prefix.is_dir() else Path(f"{prefix}.index")
    base = str(index_path)[: -len(".index")]
    try:
        index = index_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(
            f"checkpoint {prefix}: cannot read index ({exc.strerror})"
        ) from None
    try:
        entries = _table_entries(index)
    except (ValueError, IndexError, struct.error) as exc:
        raise CheckpointError(
            f"checkpoint {index_path}: not a TensorFlow index ({exc})"
        ) from None

    tensors: dict[str, np.ndarray] = {}
    shards: dict[int, np.memmap] = {}
    num_shards = 1
    for raw_key, value in entries:
        if raw_key == b"":  # BundleHeaderProto: num_shards, endianness, version
            header = dict(_proto_fields(value))
            num_shards = int(header.get(1, 1))  # type: ignore[arg-type]
            if header.get(2, 0) != 0:
                raise CheckpointError(
                    f"checkpoint {index_path}: big-endian bundles unsupported"
                )
            continue
        name = raw_key.decode()
        if skip_optimizer and (name.endswith(("/Adam", "/Adam_1")) or "_power" in name):
            continue
        entry = dict(_proto_fields(value))
        if 7 in entry:
            raise CheckpointError(
                f"checkpoint {index_path}: sliced tensor {name} unsupported"
            )
        dtype_code = int(entry.get(1, 0))  # type: ignore[arg-type]
        if dtype_code not in _DTYPES:
            continue  # strings/resources (e.g. saver bookkeeping): not weights
        shape = _parse_shape(entry.get(2, b""))  # type: ignore[arg-type]
        shard = int(entry.get(3, 0))  # type: ignore[arg-type]
        offset = int(entry.get(4, 0))  # type: ignore[arg-type]
        size = int(entry.get(5, 0))  # type: ignore[arg-type]
        if shard not in shards:
            path = Path(f"{base}.data-{shard:05d}-of-{num_shards:05d}")
            try:
                shards[shard] = np.memmap(path, dtype=np.uint8, mode="r")
            except OSError as exc:
                raise CheckpointError(f"checkpoint {path}: {exc.strerror}") from None
        raw = bytes(shards[shard][offset : offset + size])
        if len(raw) != size:
            raise CheckpointError(f"checkpoint {base}: data file truncated at {name}")
        if verify and masked_crc32c(raw) != entry.get(6):
            raise CheckpointError(f"checkpoint {base}: crc mismatch in {name}")
        array = np.frombuffer(raw, dtype=_DTYPES[dtype_code]).reshape(shape)
        tensors[name] = array.copy()
    return tensors
