"""Omaha codes: update_engine error code names with flag bits, accepted events, status numbering."""

from __future__ import annotations

from coreroll.omaha.codes import (
    ACCEPTED_EVENTS,
    ErrorCode,
    ErrorCodeFlag,
    InstanceStatus,
    UpdateStatus,
    error_code_name,
    http_error_code,
    split_error_code,
)


def test_error_code_names_include_flag_bits() -> None:
    # Nebraska issue #371: 268435490 is OmahaResponseInvalid with the TestOmahaUrl flag.
    assert error_code_name(268435490) == "OmahaResponseInvalid|TestOmahaUrlFlag"
    assert error_code_name(44) == "RollbackError"
    assert error_code_name(10) == "PayloadHashMismatchError"
    assert (
        error_code_name((1 << 31) | (1 << 30) | 12)
        == "DownloadPayloadVerificationError|DevModeFlag|ResumedFlag"
    )
    assert error_code_name(-2147483614) == "OmahaResponseInvalid|DevModeFlag"  # printed with %d
    assert error_code_name(http_error_code(404)) == "OmahaRequestHTTPResponse404"
    assert error_code_name(77) == "Unknown(77)"
    assert split_error_code(268435490) == (34, ErrorCodeFlag.TestOmahaUrlFlag)


def test_short_spellings_are_aliases_of_update_engine_names() -> None:
    assert ErrorCode.PayloadHashMismatch is ErrorCode.PayloadHashMismatchError == 10
    assert ErrorCode.PayloadSizeMismatch == 11
    assert ErrorCode.DownloadPayloadVerificationError == 12
    assert ErrorCode.DownloadPayloadPubKeyVerificationError == 18
    assert http_error_code(503) == 2503 and http_error_code(1234) == 2999


def test_accepted_events_and_statuses() -> None:
    assert {(3, 0), (3, 1), (3, 2), (13, 1), (14, 1), (800, 1)} == ACCEPTED_EVENTS
    assert [s.name for s in InstanceStatus] == [
        "Undefined",
        "UpdateGranted",
        "Error",
        "Complete",
        "Installed",
        "Downloaded",
        "Downloading",
        "OnHold",
    ]
    assert InstanceStatus.OnHold == 8
    assert len(UpdateStatus) == 8 and UpdateStatus.UPDATE_STATUS_IDLE == "UPDATE_STATUS_IDLE"
