"""gobt's data classes: the part of `dataclasses` gobt uses, made cheaply.

Importing dataclasses (it pulls in inspect, ast and dis) and decorating
gobt's 25 classes with it cost a cold run ~15 ms, more than reading a
23 MB binary's symbols. This makes the same __init__ (compiled once per
class, so instances cost what dataclasses' do), __repr__ and __eq__, and
for frozen classes __hash__ and read-only attributes, with dataclasses'
rules: fields in annotation order, defaults and default factories, a
non-frozen class unhashable.
"""

_MISSING = object()


class FrozenInstanceError(AttributeError):
    pass


class Field:
    __slots__ = ("name", "default", "default_factory", "repr")

    def __init__(self, default=_MISSING, default_factory=_MISSING, repr=True):
        self.name = None
        self.default = default
        self.default_factory = default_factory
        self.repr = repr


def field(*, default=_MISSING, default_factory=_MISSING, repr=True):
    return Field(default, default_factory, repr)


def dataclass(cls=None, *, frozen=False):
    def wrap(c):
        return _make(c, frozen)

    return wrap if cls is None else wrap(cls)


def _make(cls, frozen):
    fields = []
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, _MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        fields.append(f)
        if isinstance(value, Field):
            if f.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, f.default)
    cls.__record_fields__ = tuple(fields)
    names = tuple(f.name for f in fields)
    scope = {"_MISSING": _MISSING, "_setattr": object.__setattr__}
    params, body = [], []
    for f in fields:
        if f.default_factory is not _MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            value = f"_factory_{f.name}() if {f.name} is _MISSING else {f.name}"
        elif f.default is not _MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
            value = f.name
        else:
            params.append(f.name)
            value = f.name
        body.append(f"_setattr(self, {f.name!r}, {value})" if frozen else f"self.{f.name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n    " + ("\n    ".join(body) or "pass") + "\n"
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), scope)
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    shown = tuple(f.name for f in fields if f.repr)

    def __repr__(self):
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self, other):
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    cls.__repr__ = __repr__
    cls.__eq__ = __eq__
    if frozen:
        def __hash__(self):
            return hash(tuple(getattr(self, n) for n in names))

        def __setattr__(self, name, value):
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self, name):
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        cls.__hash__ = __hash__
        cls.__setattr__ = __setattr__
        cls.__delattr__ = __delattr__
    else:
        cls.__hash__ = None
    return cls


def replace(obj, **changes):
    """A copy of obj with some fields changed."""
    values = {f.name: getattr(obj, f.name) for f in obj.__record_fields__}
    values.update(changes)
    return obj.__class__(**values)


def astuple(obj):
    """The fields' values in order (not recursing into them)."""
    return tuple(getattr(obj, f.name) for f in obj.__record_fields__)
