"""The worker finds its dispatch partition as the Java client's default partitioner does."""

from __future__ import annotations

import pytest

from streams.kafka.partitioning import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest.testMurmur2, plus the empty key.
JAVA_MURMUR2 = {
    b"": 275646681,
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2.items())
def test_murmur2_equals_the_java_clients(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_clears_the_sign_bit_before_the_modulo() -> None:
    # murmur2(b"21") is negative: Java's toPositive masks it, it does not take abs().
    assert partition_for("21", 7) == (-973932308 & 0x7FFFFFFF) % 7 == 3  # abs() would give 6
    assert partition_for("abc", 4) == 479470107 % 4


def test_partition_is_in_range_and_stable() -> None:
    keys = [f"host-{i}-{i * 7919}" for i in range(200)]
    found = [partition_for(k, 4) for k in keys]
    assert found == [partition_for(k, 4) for k in keys]
    assert set(found) == {0, 1, 2, 3}


def test_partition_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive partition count"):
        partition_for("w", 0)
