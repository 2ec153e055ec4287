"""The protobuf messages of an update_engine payload, defined here from the format's field numbers.

Flatcar's update_engine (``src/update_engine/update_metadata.proto``, proto2, package
``chromeos_update_engine``) and ue-rs (``update-format-crau``, the same schema) read a payload's
manifest and signatures blob with these messages. They are built at import from a
``FileDescriptorProto`` with the protobuf runtime (no generated code, no .proto file): the runtime
then parses exactly as update_engine's C++ protobuf does (unknown fields kept, an unknown enum value
leaves the field unset, a wrong wire type is an unknown field), which a hand-written parser would
have to re-implement. Tests build real payloads with the same classes.

Public API: ``DeltaArchiveManifest``, ``InstallOperation``, ``Extent``, ``Signatures``,
``InstallInfo``, ``InstallProcedure`` (message classes); ``parse_message(cls, raw, what)`` parses and
checks proto2's required fields as ``ParseFromArray`` does, raising ``ValueError`` naming what is
wrong; the enum values ``REPLACE``, ``REPLACE_BZ``, ``MOVE``, ``BSDIFF``, ``KERNEL``, ``PCR_POLICY``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeVar

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

_PACKAGE: Final = "chromeos_update_engine"
_F = descriptor_pb2.FieldDescriptorProto

REPLACE, REPLACE_BZ, MOVE, BSDIFF = 0, 1, 2, 3  # InstallOperation.Type
KERNEL, PCR_POLICY = 0, 1  # InstallProcedure.Type

# (name, number, label, type, message or enum type) per message, as in update_metadata.proto.
_OPTIONAL, _REQUIRED, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REQUIRED, _F.LABEL_REPEATED
_U32, _U64, _BYTES, _MSG, _ENUM = _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_BYTES, _F.TYPE_MESSAGE, _F.TYPE_ENUM
_MESSAGES: Final[dict[str, list[tuple[str, int, int, int, str | None]]]] = {
    "Extent": [
        ("start_block", 1, _OPTIONAL, _U64, None),
        ("num_blocks", 2, _OPTIONAL, _U64, None),
    ],
    "InstallOperation": [
        ("type", 1, _REQUIRED, _ENUM, "InstallOperation.Type"),
        ("data_offset", 2, _OPTIONAL, _U32, None),
        ("data_length", 3, _OPTIONAL, _U32, None),
        ("src_extents", 4, _REPEATED, _MSG, "Extent"),
        ("src_length", 5, _OPTIONAL, _U64, None),
        ("dst_extents", 6, _REPEATED, _MSG, "Extent"),
        ("dst_length", 7, _OPTIONAL, _U64, None),
        ("data_sha256_hash", 8, _OPTIONAL, _BYTES, None),
    ],
    "Signatures": [("signatures", 1, _REPEATED, _MSG, "Signatures.Signature")],
    "InstallInfo": [
        ("size", 1, _OPTIONAL, _U64, None),
        ("hash", 2, _OPTIONAL, _BYTES, None),
    ],
    "InstallProcedure": [
        ("type", 1, _OPTIONAL, _ENUM, "InstallProcedure.Type"),
        ("operations", 2, _REPEATED, _MSG, "InstallOperation"),
        ("old_info", 3, _OPTIONAL, _MSG, "InstallInfo"),
        ("new_info", 4, _OPTIONAL, _MSG, "InstallInfo"),
    ],
    "DeltaArchiveManifest": [
        ("partition_operations", 1, _REPEATED, _MSG, "InstallOperation"),
        ("noop_operations", 2, _REPEATED, _MSG, "InstallOperation"),
        ("block_size", 3, _OPTIONAL, _U32, None),  # default 4096, set below
        ("signatures_offset", 4, _OPTIONAL, _U64, None),
        ("signatures_size", 5, _OPTIONAL, _U64, None),
        ("old_partition_info", 8, _OPTIONAL, _MSG, "InstallInfo"),
        ("new_partition_info", 9, _OPTIONAL, _MSG, "InstallInfo"),
        ("procedures", 10, _REPEATED, _MSG, "InstallProcedure"),
    ],
}
_NESTED_SIGNATURE: Final = [("version", 1, _OPTIONAL, _U32, None), ("data", 2, _OPTIONAL, _BYTES, None)]
_ENUMS: Final = {
    "InstallOperation": (
        "Type",
        {"REPLACE": REPLACE, "REPLACE_BZ": REPLACE_BZ, "MOVE": MOVE, "BSDIFF": BSDIFF},
    ),
    "InstallProcedure": ("Type", {"KERNEL": KERNEL, "PCR_POLICY": PCR_POLICY}),
}


def _add_fields(
    message: descriptor_pb2.DescriptorProto, fields: Sequence[tuple[str, int, int, int, str | None]]
) -> None:
    for name, number, label, kind, type_name in fields:
        field = message.field.add(name=name, number=number, label=label, type=kind)
        if type_name is not None:
            field.type_name = f".{_PACKAGE}.{type_name}"


def _file() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="coreroll/update_metadata.proto", package=_PACKAGE, syntax="proto2"
    )
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        _add_fields(message, fields)
        if name in _ENUMS:
            enum_name, values = _ENUMS[name]
            enum = message.enum_type.add(name=enum_name)
            for value_name, number in values.items():
                enum.value.add(name=value_name, number=number)
        if name == "Signatures":
            _add_fields(message.nested_type.add(name="Signature"), _NESTED_SIGNATURE)
        if name == "DeltaArchiveManifest":
            next(f for f in message.field if f.name == "block_size").default_value = "4096"
    return proto


_POOL: Final = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _class(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Extent: Final[Any] = _class("Extent")
InstallOperation: Final[Any] = _class("InstallOperation")
Signatures: Final[Any] = _class("Signatures")
InstallInfo: Final[Any] = _class("InstallInfo")
InstallProcedure: Final[Any] = _class("InstallProcedure")
DeltaArchiveManifest: Final[Any] = _class("DeltaArchiveManifest")

M = TypeVar("M", bound=Message)


def parse_message(cls: type[M], raw: bytes, what: str) -> M:
    """``raw`` as ``cls``; like C++ ``ParseFromArray``, a missing required field is a parse error."""
    message = cls()
    try:
        message.ParseFromString(raw)
    except DecodeError as exc:
        raise ValueError(f"{what} is not a valid protobuf message: {exc}") from None
    if not message.IsInitialized():
        missing = ", ".join(message.FindInitializationErrors()[:5])  # pyright: ignore[reportAttributeAccessIssue]  # every concrete message class has it; protobuf's Message stub does not
        raise ValueError(f"{what} lacks required fields: {missing}")
    return message
