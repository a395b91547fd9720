"""Which dispatch partition a worker id lands in: the Java client's default partitioner.

Masters produce dispatch records keyed by worker id with librdkafka's `murmur2_random`
partitioner (see `Settings.producer_config`), which is the Java client's: murmur2 of the key
bytes (seed 0x9747b28c), sign bit cleared, modulo the partition count. A worker computes the
same here to read only its own partition. Pure; no I/O.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Java `org.apache.kafka.common.utils.Utils.murmur2`, as a signed 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: str, partitions: int) -> int:
    """The partition the Java client (and librdkafka's murmur2 partitioners) put `key` in."""
    if partitions <= 0:
        raise ValueError(f"expected a positive partition count, found {partitions}")
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
