"""gobt.record: the dataclasses rules gobt relies on, kept by its own
cheaper decorator."""

import pytest

from gobt.record import FrozenInstanceError, astuple, dataclass, field, replace

pytestmark = pytest.mark.bpftrace_independent


@dataclass(frozen=True)
class Point:
    x: int
    y: int = 0


@dataclass
class Bag:
    name: str
    items: list = field(default_factory=list)
    secret: object = field(repr=False, default=None)


def test_init_defaults_and_factories():
    assert (Point(1).x, Point(1).y, Point(1, 2).y, Point(y=3, x=4).x) == (1, 0, 2, 4)
    a, b = Bag("a"), Bag("b")
    a.items.append(1)
    assert b.items == []  # one list per instance
    with pytest.raises(TypeError):
        Point()


def test_equality_hash_and_frozenness():
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert len({Point(1, 2), Point(1, 2), Point(0, 0)}) == 2
    with pytest.raises(FrozenInstanceError):
        Point(1).x = 5
    with pytest.raises(AttributeError):  # as dataclasses: FrozenInstanceError is one
        Point(1).y = 5
    with pytest.raises(TypeError):
        hash(Bag("a"))  # a mutable record is not hashable
    bag = Bag("a")
    bag.name = "b"
    assert bag == Bag("b") and bag != Point(1)


def test_repr_replace_astuple():
    assert repr(Bag("a", [1], secret=object())) == "Bag(name='a', items=[1])"
    assert replace(Point(1, 2), y=5) == Point(1, 5)
    assert astuple(Point(3, 4)) == (3, 4)
