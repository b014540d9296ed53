import pytest

from ramba.errors import BadInputError
from ramba.evals.lengths import format_length, parse_depths, parse_length, parse_lengths


@pytest.mark.parametrize("text,want", [("4K", 4096), ("64k", 65536), ("1M", 1 << 20), ("64M", 64 << 20),
                                       ("4096", 4096), (" 2K ", 2048), (17, 17)])
def test_parse_length(text, want):
    assert parse_length(text) == want


@pytest.mark.parametrize("bad", ["64Q", "-1", "0", "", "4.5K", "K", "1e3", "0K", "1T"])
def test_parse_length_rejects(bad):
    with pytest.raises(BadInputError) as e:
        parse_length(bad)
    assert "\n" not in str(e.value) and repr(bad) in str(e.value)


def test_lists_and_ranges():
    assert parse_lengths("4K,16K,64K") == (4096, 16384, 65536)
    assert parse_lengths("4K..1M") == tuple(4096 << i for i in range(9))
    assert parse_lengths("1K..4K,1K,16K") == (1024, 2048, 4096, 16384)  # merged, sorted, deduplicated
    assert parse_lengths(["2K", 1024]) == (1024, 2048)


@pytest.mark.parametrize("bad", ["4K..1K", "4K..3M", "4K,,8K", "..4K"])
def test_bad_ranges(bad):
    with pytest.raises(BadInputError):
        parse_lengths(bad)


def test_depths():
    assert parse_depths("5") == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert parse_depths("0,0.25,0.5") == (0.0, 0.25, 0.5)
    assert parse_depths("1") == (1.0,)  # a lone 0 or 1 is a depth, not a count
    assert parse_depths("0.3") == (0.3,)
    for bad in ("1.5", "-0.1", "x", "0,2"):
        with pytest.raises(BadInputError):
            parse_depths(bad)


def test_format_length_round_trips():
    for n in (1024, 4096, 65536, 1 << 20, 64 << 20, 1000, 3 << 30):
        assert parse_length(format_length(n)) == n
