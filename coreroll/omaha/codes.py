"""Omaha v3 constants as CoreOS/Flatcar update_engine, go-omaha and Nebraska use them.

Public API:

- ``APP_ID``: the CoreOS/Flatcar app id, with braces, as update_engine sends it.
  ``normalize_app_id(appid)`` strips braces and lowercases; ``same_app_id(a, b)`` compares two ids
  the way Nebraska does (brace- and case-insensitive); ``is_os_app(appid)`` compares with ``APP_ID``.
- ``EventType`` / ``EventResult`` (IntEnum): the Omaha event numbers.
- ``ACCEPTED_EVENTS``: the (type, result) pairs a server accepts (3/0, 3/1, 3/2, 13/1, 14/1, 800/1),
  ``EVENT_DESCRIPTIONS`` their Nebraska descriptions.
- ``ErrorCode`` (IntEnum): update_engine's ``ActionExitCode`` (``kActionCode`` prefix dropped, e.g.
  ``ErrorCode.PayloadHashMismatchError``). The short spellings of the reference are aliases of the same
  members: ``ErrorCode.PayloadHashMismatch is ErrorCode.PayloadHashMismatchError``.
- ``ErrorCodeFlag`` (IntFlag): the bits ORed into a reported errorcode (DevMode 1<<31, Resumed 1<<30,
  TestImage 1<<29, TestOmahaUrl 1<<28); ``SPECIAL_FLAGS`` is their mask. ``HTTP_RESPONSE_BASE`` = 2000.
- ``split_error_code(code) -> (base, flags)``; ``error_code_name(code) -> str``
  (``268435490`` -> ``"OmahaResponseInvalid|TestOmahaUrlFlag"``, ``2404`` -> ``"OmahaRequestHTTPResponse404"``);
  ``http_error_code(status) -> int`` (2000 + status, capped at 999 as update_engine does).
- ``InstanceStatus`` (IntEnum): Nebraska's instance statuses, 1 Undefined ... 8 OnHold.
- ``UpdateStatus`` (StrEnum) and module constants ``UPDATE_STATUS_IDLE`` ...: update_engine's 8 operation names.
- App and updatecheck status strings: ``APP_STATUS_*``, ``UPDATECHECK_*``.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag, StrEnum
from typing import Final

APP_ID: Final = "{e96281a6-d1af-4bde-9a0a-97b76e56dc57}"


def normalize_app_id(appid: str) -> str:
    """``{E96281A6-...}`` -> ``e96281a6-...``: braces stripped, lowercase, surrounding blanks removed."""
    return appid.strip().strip("{}").lower()


def same_app_id(a: str, b: str) -> bool:
    """True when two app ids name the same app, ignoring braces and case (as Nebraska matches them)."""
    return normalize_app_id(a) == normalize_app_id(b)


_OS_APP_ID: Final = normalize_app_id(APP_ID)


def is_os_app(appid: str) -> bool:
    """True for the CoreOS/Flatcar OS app id in any spelling (with or without braces, any case)."""
    return appid == APP_ID or normalize_app_id(appid) == _OS_APP_ID  # the spelling every node sends first


class EventType(IntEnum):
    """Omaha event types (go-omaha ``omaha/codes.go``; 800 is the CoreUpdate/Nebraska extension)."""

    Unknown = 0
    DownloadComplete = 1
    InstallComplete = 2
    UpdateComplete = 3
    Uninstall = 4
    DownloadStarted = 5
    InstallStarted = 6
    NewApplicationInstallStarted = 9
    SetupStarted = 10
    SetupFinished = 11
    UpdateApplicationStarted = 12
    UpdateDownloadStarted = 13
    UpdateDownloadFinished = 14
    UpdateInstallerStarted = 15
    SetupUpdateBegin = 16
    SetupUpdateComplete = 17
    RegisterProductComplete = 20
    OEMInstallFirstCheck = 30
    AppSpecificCommandStarted = 40
    AppSpecificCommandEnded = 41
    SetupFailure = 100
    ComServerFailure = 102
    SetupUpdateFailure = 103
    UpdateInstalled = 800  # "Install success. Update completion prevented by instance."


class EventResult(IntEnum):
    """Omaha event results."""

    Error = 0
    Success = 1
    SuccessReboot = 2
    SuccessRestartBrowser = 3
    Cancelled = 4
    ErrorInstallerMSI = 5
    ErrorInstallerOther = 6
    NoUpdate = 7
    InstallerSystem = 8
    UpdateDeferred = 9
    HandoffError = 10


# The (type, result) pairs CoreUpdate documents and Nebraska's event_type table holds; any other pair is
# rejected (Nebraska: ErrInvalidEventTypeOrResult).
EVENT_DESCRIPTIONS: Final[dict[tuple[int, int], str]] = {
    (3, 0): "Instance reported an error during an update step.",
    (3, 1): "Updater has processed and applied package.",
    (3, 2): "Instances upgraded to current channel version.",
    (13, 1): "Downloading latest version.",
    (14, 1): "Update package arrived successfully.",
    (800, 1): "Install success. Update completion prevented by instance.",
}
ACCEPTED_EVENTS: Final[frozenset[tuple[int, int]]] = frozenset(EVENT_DESCRIPTIONS)


class ErrorCode(IntEnum):
    """update_engine ``ActionExitCode`` (``src/update_engine/action_processor.h``), prefix dropped."""

    Success = 0
    Error = 1
    OmahaRequestError = 2
    OmahaResponseHandlerError = 3
    FilesystemCopierError = 4
    PostinstallRunnerError = 5
    SetBootableFlagError = 6
    InstallDeviceOpenError = 7
    KernelDeviceOpenError = 8
    DownloadTransferError = 9
    PayloadHashMismatchError = 10
    PayloadSizeMismatchError = 11
    DownloadPayloadVerificationError = 12
    DownloadNewPartitionInfoError = 13
    DownloadWriteError = 14
    NewRootfsVerificationError = 15
    NewKernelVerificationError = 16
    SignedDeltaPayloadExpectedError = 17
    DownloadPayloadPubKeyVerificationError = 18
    PostinstallBootedFromFirmwareB = 19
    DownloadStateInitializationError = 20
    DownloadInvalidMetadataMagicString = 21
    DownloadSignatureMissingInManifest = 22
    DownloadManifestParseError = 23
    DownloadMetadataSignatureError = 24
    DownloadMetadataSignatureVerificationError = 25
    DownloadMetadataSignatureMismatch = 26
    DownloadOperationHashVerificationError = 27
    DownloadOperationExecutionError = 28
    DownloadOperationHashMismatch = 29
    OmahaRequestEmptyResponseError = 30
    OmahaRequestXMLParseError = 31
    DownloadInvalidMetadataSize = 32
    DownloadInvalidMetadataSignature = 33
    OmahaResponseInvalid = 34
    OmahaUpdateIgnoredPerPolicy = 35
    OmahaUpdateDeferredPerPolicy = 36
    OmahaErrorInHTTPResponse = 37
    DownloadOperationHashMissingError = 38
    DownloadMetadataSignatureMissingError = 39
    OmahaUpdateDeferredForBackoff = 40
    PostinstallPowerwashError = 41
    NewPCRPolicyVerificationError = 42
    NewPCRPolicyHTTPError = 43
    RollbackError = 44  # Flatcar: still running the version it updated away from
    DownloadIncomplete = 100  # internal (like EAGAIN), never reported
    OmahaRequestHTTPResponseBase = 2000  # + HTTP status

    # Aliases: other spellings in use for the same codes (same members as above).
    PayloadHashMismatch = 10
    PayloadSizeMismatch = 11
    SignedDeltaPayloadExpected = 17
    DownloadStateInitialization = 20
    OmahaRequestEmptyResponse = 30
    UpdateIgnoredPerPolicy = 35
    UpdateDeferredPerPolicy = 36
    DeferredForBackoff = 40


class ErrorCodeFlag(IntFlag):
    """Bits update_engine ORs into an errorcode to give context about the system."""

    TestOmahaUrlFlag = 1 << 28
    TestImageFlag = 1 << 29
    ResumedFlag = 1 << 30
    DevModeFlag = 1 << 31


SPECIAL_FLAGS: Final = int(
    ErrorCodeFlag.DevModeFlag
    | ErrorCodeFlag.ResumedFlag
    | ErrorCodeFlag.TestImageFlag
    | ErrorCodeFlag.TestOmahaUrlFlag
)
HTTP_RESPONSE_BASE: Final = 2000


def split_error_code(code: int) -> tuple[int, ErrorCodeFlag]:
    """Split a reported errorcode into (base code, flag bits).

    update_engine prints the code with ``%d``, so a code carrying DevModeFlag (bit 31) arrives negative;
    it is read as the unsigned 32-bit value first.
    """
    unsigned = code & 0xFFFFFFFF
    return unsigned & ~SPECIAL_FLAGS, ErrorCodeFlag(unsigned & SPECIAL_FLAGS)


def http_error_code(status: int) -> int:
    """The errorcode update_engine reports for a failed HTTP transfer (status < 0 or >= 1000 -> 999)."""
    if status < 0 or status >= 1000:
        status = 999
    return HTTP_RESPONSE_BASE + status


def error_code_name(code: int) -> str:
    """A readable name: ``34`` -> ``OmahaResponseInvalid``, ``268435490`` -> ``OmahaResponseInvalid|TestOmahaUrlFlag``,
    ``2404`` -> ``OmahaRequestHTTPResponse404``, ``77`` -> ``Unknown(77)``."""
    base, flags = split_error_code(code)
    if base in ErrorCode._value2member_map_:
        name = ErrorCode(base).name
    elif HTTP_RESPONSE_BASE < base < HTTP_RESPONSE_BASE + 1000:
        name = f"OmahaRequestHTTPResponse{base - HTTP_RESPONSE_BASE}"
    else:
        name = f"Unknown({base})"
    # Highest bit first, the order action_processor.h declares them in.
    flag_names = [f.name for f in sorted(ErrorCodeFlag, reverse=True) if f in flags and f.name]
    return "|".join([name, *flag_names])


class InstanceStatus(IntEnum):
    """Nebraska's instance statuses (``types/instance.go``); OnHold is shown as "Waiting..."."""

    Undefined = 1
    UpdateGranted = 2
    Error = 3
    Complete = 4
    Installed = 5
    Downloaded = 6
    Downloading = 7
    OnHold = 8


class UpdateStatus(StrEnum):
    """update_engine's operation names (``UpdateStatusToString``), as ``update_engine_client -status`` prints."""

    UPDATE_STATUS_IDLE = "UPDATE_STATUS_IDLE"
    UPDATE_STATUS_CHECKING_FOR_UPDATE = "UPDATE_STATUS_CHECKING_FOR_UPDATE"
    UPDATE_STATUS_UPDATE_AVAILABLE = "UPDATE_STATUS_UPDATE_AVAILABLE"
    UPDATE_STATUS_DOWNLOADING = "UPDATE_STATUS_DOWNLOADING"
    UPDATE_STATUS_VERIFYING = "UPDATE_STATUS_VERIFYING"
    UPDATE_STATUS_FINALIZING = "UPDATE_STATUS_FINALIZING"
    UPDATE_STATUS_UPDATED_NEED_REBOOT = "UPDATE_STATUS_UPDATED_NEED_REBOOT"
    UPDATE_STATUS_REPORTING_ERROR_EVENT = "UPDATE_STATUS_REPORTING_ERROR_EVENT"


UPDATE_STATUS_IDLE: Final = UpdateStatus.UPDATE_STATUS_IDLE
UPDATE_STATUS_CHECKING_FOR_UPDATE: Final = UpdateStatus.UPDATE_STATUS_CHECKING_FOR_UPDATE
UPDATE_STATUS_UPDATE_AVAILABLE: Final = UpdateStatus.UPDATE_STATUS_UPDATE_AVAILABLE
UPDATE_STATUS_DOWNLOADING: Final = UpdateStatus.UPDATE_STATUS_DOWNLOADING
UPDATE_STATUS_VERIFYING: Final = UpdateStatus.UPDATE_STATUS_VERIFYING
UPDATE_STATUS_FINALIZING: Final = UpdateStatus.UPDATE_STATUS_FINALIZING
UPDATE_STATUS_UPDATED_NEED_REBOOT: Final = UpdateStatus.UPDATE_STATUS_UPDATED_NEED_REBOOT
UPDATE_STATUS_REPORTING_ERROR_EVENT: Final = UpdateStatus.UPDATE_STATUS_REPORTING_ERROR_EVENT

# <app status="..."> (go-omaha standard codes plus Nebraska's refusal strings).
APP_STATUS_OK: Final = "ok"
APP_STATUS_RESTRICTED: Final = "restricted"
APP_STATUS_UNKNOWN_APPLICATION: Final = "error-unknownApplication"
APP_STATUS_INVALID_APP_ID: Final = "error-invalidAppId"
APP_STATUS_INVALID_VERSION: Final = "error-invalidVersion"
APP_STATUS_INTERNAL_ERROR: Final = "error-internal"

# <updatecheck status="...">.
UPDATECHECK_OK: Final = "ok"
UPDATECHECK_NOUPDATE: Final = "noupdate"
UPDATECHECK_INTERNAL_ERROR: Final = "error-internal"
UPDATECHECK_UNSUPPORTED_PROTOCOL: Final = "error-unsupportedProtocol"
UPDATECHECK_OS_NOT_SUPPORTED: Final = "error-osnotsupported"
UPDATECHECK_HASH_ERROR: Final = "error-hash"

# Fixed values update_engine sends (reference 1.1).
UPDATER_VERSION: Final = "update_engine-0.4.10"
OS_PLATFORM: Final = "CoreOS"
OS_VERSION: Final = "Chateau"
