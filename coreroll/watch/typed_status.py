"""The fast path of `coreroll.watch.parse.parse_node_status`: msgspec decodes a status value
straight into Struct types generated from the field table (`coreroll.wire.status`), checking
every field's JSON type and bounds in C as it reads, so a well-formed report (nearly all of them)
costs one pass instead of a JSON parse plus a type test per field in Python (100,000 reports at
start: about half the time). Anything it refuses (a wrong type, a number out of bounds, a missing
section, JSON only Python's json reads) makes the reader return None: the careful reader in
`parse` then names what is wrong, so the two must accept exactly the same documents.

    read = status_reader(fields, partition_fields, bounds, result=NodeReport, finish=..., convert=...)
    report = read(raw)        # NodeReport, or None: not well formed

`bounds` gives the numeric limits; `convert[kind]` turns a decoded non-None value into what the
report holds (or returns `bad` to refuse it); `share(values)` returns the PartitionView of a
partition's values (shared between reports). The code that copies the decoded fields into
`result(...)` is generated from the table, like dataclasses' __init__: a loop over the table
costs twice as much.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from coreroll.wire import status as wire

Reader = Callable[[bytes], Any]


def status_reader(
    fields: tuple[wire.Field, ...],
    partition_fields: tuple[wire.Field, ...],
    *,
    int_range: tuple[int, int],
    time_range: tuple[float, float],
    result: Callable[..., Any],
    finish: Callable[[Any], Any],
    convert: dict[str, Callable[[Any], Any]],
    share: Callable[[tuple[Any, ...]], Any],
    bad: object,
    no_extra: dict[str, Any],
) -> Reader:
    for f in (*fields, *partition_fields):
        if f.attr is not None and not f.attr.isidentifier():
            raise ValueError(f"status field {f.path}: attr {f.attr!r} is not a Python name")
    types = _kind_types(int_range, time_range)
    part_fields: list[tuple[str, Any, Any]] = [
        (f"f{i}", types[f.kind], None) for i, f in enumerate(partition_fields)
    ]
    part_fields[0] = ("f0", str, msgspec.NODEFAULT)  # the label (a partition is known by it)
    partition = msgspec.defstruct(
        "Partition",
        part_fields,
        rename={f"f{i}": f.name for i, f in enumerate(partition_fields)},
        frozen=True,  # hashable: the key of `share`
        kw_only=True,
    )
    types[wire.PARTITIONS] = list[partition] | None
    sections = list(dict.fromkeys(f.section for f in fields if f.section is not None))
    structs: dict[str | None, list[tuple[str, Any, Any]]] = {None: [], **{s: [] for s in sections}}
    renames: dict[str | None, dict[str, str]] = {s: {} for s in structs}
    for i, f in enumerate(fields):
        structs[f.section].append((f"f{i}", types[f.kind], None))
        renames[f.section][f"f{i}"] = f.name
    empty_sections = {}
    for n, section in enumerate(sections):
        struct = msgspec.defstruct(
            f"Section{n}", structs[section], rename=renames[section], gc=False, kw_only=True
        )
        structs[None].append((f"s{n}", struct | None, None))  # missing: all its fields unknown
        renames[None][f"s{n}"] = section
        empty_sections[f"E{n}"] = struct()
    document = msgspec.defstruct(
        "StatusDocument", structs[None], rename=renames[None], gc=False, kw_only=True
    )
    decode = msgspec.json.Decoder(document).decode
    namespace: dict[str, Any] = {
        "decode": decode,
        "DecodeError": msgspec.DecodeError,
        "result": result,
        "finish": finish,
        "share": share,
        "BAD": bad,
        "NO_EXTRA": no_extra,
        **empty_sections,
        **{f"C{i}": convert[f.kind] for i, f in enumerate(fields) if f.kind in convert},
    }
    source = _reader_source(fields, sections, set(convert), _parameters(result))
    exec(compile(source, "<coreroll.watch.typed_status reader>", "exec"), namespace)
    return namespace["read"]


def _kind_types(int_range: tuple[int, int], time_range: tuple[float, float]) -> dict[str, Any]:
    """What msgspec accepts for each kind: exactly what the careful reader takes without a problem."""
    # Any: runtime type objects for msgspec, not annotations (so `| None` builds a union at run time)
    int64: Any = Annotated[int, Meta(ge=int_range[0], le=int_range[1])]
    seconds: Any = Annotated[float, Meta(ge=time_range[0], le=time_range[1])]  # an int is read too
    fraction: Any = Annotated[float, Meta(ge=0, le=1)]
    return {
        wire.STR: str | None,
        wire.VERSION: str | None,
        wire.INT: int64 | None,
        wire.FRACTION: fraction | None,
        wire.BOOL: bool | None,
        wire.TIME: str | seconds | None,
        wire.EPOCH: str | seconds | None,  # (the careful reader takes a time string here too)
        wire.COMMAND: dict[str, Any] | None,
    }


def _parameters(result: Callable[..., Any]) -> list[str]:
    """`result`'s parameters that may be passed by position, in order."""
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(result).parameters.values() if p.kind in kinds]


def _reader_source(
    fields: tuple[wire.Field, ...], sections: list[str], converted: set[str], parameters: list[str]
) -> str:
    """Python source of `read(raw)`: decode, then one straight run over the fields. Field names
    enter it only as repr() string literals. `result` gets the longest run of its `parameters`
    that the table sets by position (a third cheaper than by keyword), the rest by keyword."""
    lines = [
        "def read(raw):",
        "    try:",
        "        d = decode(raw)",
        "    except (DecodeError, RecursionError):",
        "        return None",
    ]
    source = {None: "d", **{section: f"s{n}" for n, section in enumerate(sections)}}
    lines += [f"    s{n} = d.s{n} or E{n}" for n in range(len(sections))]
    values: dict[str, str] = {}
    extra = []
    for i, f in enumerate(fields):
        lines.append(f"    v{i} = {source[f.section]}.f{i}")
        if f.kind == wire.PARTITIONS:
            lines.append(f"    v{i} = () if v{i} is None else tuple(map(share, v{i}))")
        elif f.kind in converted:
            lines += [
                f"    if v{i} is not None:",
                f"        v{i} = C{i}(v{i})",
                f"        if v{i} is BAD:",
                "            return None",
            ]
        if f.attr is None:
            extra.append(f"{f.path!r}: v{i}")
        else:
            values[f.attr] = f"v{i}"
    values["extra"] = f"{{{', '.join(extra)}}}" if extra else "NO_EXTRA"
    arguments = []
    for name in parameters:
        if name not in values:
            break
        arguments.append(values.pop(name))
    arguments += [f"{name}={value}" for name, value in values.items()]
    lines.append(f"    return finish(result({', '.join(arguments)}))")
    return "\n".join(lines) + "\n"
