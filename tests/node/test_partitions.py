"""gptprio rules of the A/B USR partitions, persisted in a state directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coreroll.cli import main
from coreroll.node.partitions import (
    PARTUUIDS,
    USR_TYPE_GUID,
    Disk,
    DiskFormatError,
    NoBootablePartitionError,
    PartitionError,
    cgpt_show,
)


def flags(disk: Disk) -> dict[str, tuple[int, int, int]]:
    return {p.label: (p.priority, p.tries, p.successful) for p in disk.table()}


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    return Disk.create(tmp_path / "node", "3000.0.0", b"image-3000")


def test_fresh_install_matches_flatcar(disk: Disk) -> None:
    assert flags(disk) == {"USR-A": (2, 0, 1), "USR-B": (1, 0, 0)}
    a, b = disk.table()
    assert (a.number, b.number) == (3, 4)
    assert a.partuuid == "7130c94a-213a-4e5a-8e26-6cce9662f132" == PARTUUIDS["USR-A"]
    assert a.type_guid == b.type_guid == USR_TYPE_GUID
    assert a.version == "3000.0.0" and b.version is None
    assert disk.active.label == "USR-A" and disk.inactive.label == "USR-B"
    assert disk.read_image("USR-A") == b"image-3000"
    with pytest.raises(PartitionError, match="USR-B holds no image"):
        disk.read_image("USR-B")


def test_full_cycle_from_the_reference(disk: Disk, tmp_path: Path) -> None:
    # fresh: A prio 2 tries 0 successful 1; B prio 1 tries 0 successful 0
    assert disk.boot().label == "USR-A"
    assert flags(disk) == {"USR-A": (2, 0, 1), "USR-B": (1, 0, 0)}
    disk.write_image("USR-B", b"image-3100", "3100.0.0")
    disk.postinstall("USR-B")
    # after postinst: A priority=1 successful=1, B priority=2 tries=1 successful=0
    assert flags(disk) == {"USR-A": (1, 0, 1), "USR-B": (2, 1, 0)}
    # GRUB boots B and decrements its tries before booting
    assert disk.boot().label == "USR-B"
    assert flags(disk) == {"USR-A": (1, 0, 1), "USR-B": (2, 0, 0)}
    assert not disk.rolled_back()
    # setgoodroot
    disk.mark_good()
    assert flags(disk) == {"USR-A": (1, 0, 1), "USR-B": (2, 0, 1)}
    assert disk.active.version == "3100.0.0"
    # everything survived on disk: a fresh Disk object reads the same table
    again = Disk(tmp_path / "node")
    assert flags(again) == flags(disk) and again.active.label == "USR-B"
    assert again.read_image("USR-B") == b"image-3100"
    # and the next update goes back to A
    again.write_image("USR-A", b"image-3200", "3200.0.0")
    again.postinstall("USR-A")
    assert flags(again) == {"USR-A": (2, 1, 0), "USR-B": (1, 0, 1)}
    assert again.boot().label == "USR-A"


def test_failed_boot_rolls_back_automatically(disk: Disk) -> None:
    disk.boot()
    disk.write_image("USR-B", b"broken", "3100.0.0")
    disk.postinstall("USR-B")
    assert disk.boot().label == "USR-B"  # the one try is used up
    # the new image never reaches setgoodroot; the machine resets and GRUB runs again
    assert disk.boot().label == "USR-A"
    assert flags(disk) == {"USR-A": (1, 0, 1), "USR-B": (2, 0, 0)}
    assert disk.rolled_back()
    assert disk.active.version == "3000.0.0"
    # and it stays on A on every later boot
    assert disk.boot().label == "USR-A"


def test_priority_zero_is_never_booted(disk: Disk) -> None:
    disk.set_attributes("USR-A", priority=0)
    disk.set_attributes("USR-B", priority=0, tries=5)
    with pytest.raises(NoBootablePartitionError, match="USR-A priority=0"):
        disk.boot()


def test_tie_goes_to_the_lower_partition_number(disk: Disk) -> None:
    disk.write_image("USR-B", b"b", "b")
    disk.set_attributes("USR-B", priority=2, successful=1)
    assert disk.boot().label == "USR-A"


def test_skips_tries_zero_successful_zero_even_at_higher_priority(disk: Disk) -> None:
    disk.set_attributes("USR-B", priority=9, tries=0, successful=0)
    assert disk.boot().label == "USR-A"
    disk.set_attributes("USR-B", tries=2)
    part = disk.boot()
    assert part.label == "USR-B" and part.tries == 1


def test_successful_partition_boots_without_using_tries(disk: Disk) -> None:
    disk.set_attributes("USR-A", tries=3)
    disk.boot()
    # a successful partition with tries > 0 still has them decremented, as gptprio does
    assert flags(disk)["USR-A"] == (2, 2, 1)


def test_prioritize_keeps_order_and_never_lowers_to_zero(disk: Disk) -> None:
    disk.set_attributes("USR-A", priority=1)
    disk.set_attributes("USR-B", priority=1)
    disk.prioritize("USR-B")
    assert flags(disk)["USR-B"][0] == 1 and flags(disk)["USR-A"][0] == 1
    disk.set_attributes("USR-A", priority=5)
    disk.prioritize("USR-B")
    assert flags(disk)["USR-B"][0] == 5 and flags(disk)["USR-A"][0] == 4
    disk.set_attributes("USR-A", priority=0)
    disk.prioritize("USR-B")
    assert flags(disk)["USR-A"][0] == 0  # a disabled slot stays disabled


def test_cannot_write_booted_partition(disk: Disk) -> None:
    with pytest.raises(PartitionError, match="refusing to write USR-A: it is the booted partition"):
        disk.write_image("USR-A", b"x", "x")
    assert disk.read_image("USR-A") == b"image-3000"


def test_writing_a_slot_clears_its_good_flag(disk: Disk) -> None:
    # B was the good fallback; once overwritten it must not count as successful until postinstall
    disk.set_attributes("USR-B", successful=1)
    disk.write_image("USR-B", b"new", "3100.0.0")
    assert flags(disk)["USR-B"] == (1, 0, 0)


def test_bad_attribute_values_are_refused(disk: Disk) -> None:
    with pytest.raises(PartitionError, match="priority must be an integer 0-15, not 16"):
        disk.set_attributes("USR-A", priority=16)
    with pytest.raises(PartitionError, match="unknown partition 'USR-C'"):
        disk.set_attributes("USR-C", priority=1)
    with pytest.raises(PartitionError, match="USR-B holds no image"):
        disk.postinstall("USR-B")
    assert flags(disk) == {"USR-A": (2, 0, 1), "USR-B": (1, 0, 0)}


def test_corrupt_table_is_reported_and_left_alone(tmp_path: Path) -> None:
    Disk.create(tmp_path, "1", b"1")
    table = tmp_path / "disk.json"
    table.write_text('{"booted": "USR-A", "partitions": [')
    with pytest.raises(DiskFormatError, match=r"disk\.json: not a coreroll partition table"):
        Disk(tmp_path)
    assert table.read_text() == '{"booted": "USR-A", "partitions": ['
    doc = {"booted": "USR-A", "partitions": [{"label": "USR-A"}]}
    table.write_text(json.dumps(doc))
    with pytest.raises(DiskFormatError):
        Disk(tmp_path)
    with pytest.raises(PartitionError, match="already exists"):
        Disk.create(tmp_path, "2", b"2")


def test_no_temporary_files_left_behind(disk: Disk) -> None:
    disk.write_image("USR-B", b"x" * 1000, "v")
    disk.postinstall("USR-B")
    assert sorted(p.name for p in disk.state_dir.iterdir()) == ["disk.json", "usr-a.img", "usr-b.img"]


CGPT_AFTER_POSTINST = """\
       start        size    part  contents
      270336     2097152       3  Label: "USR-A"
                                  Type: Alias for coreos-rootfs
                                  UUID: 7130C94A-213A-4E5A-8E26-6CCE9662F132
                                  Attr: priority=1 tries=0 successful=1
     2367488     2097152       4  Label: "USR-B"
                                  Type: Alias for coreos-rootfs
                                  UUID: E03DD35C-7C2D-4A47-B3FE-27F15780A57C
                                  Attr: priority=2 tries=1 successful=0
"""


def test_cgpt_show_layout(disk: Disk) -> None:
    disk.write_image("USR-B", b"new", "3100.0.0")
    disk.postinstall("USR-B")
    assert cgpt_show(disk) == CGPT_AFTER_POSTINST


def test_cgpt_show_command(disk: Disk, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    disk.write_image("USR-B", b"new", "3100.0.0")
    disk.postinstall("USR-B")
    assert main(["node", "cgpt-show", "--state", str(disk.state_dir)]) == 0
    assert capsys.readouterr().out == CGPT_AFTER_POSTINST
    assert main(["node", "cgpt-show", "--state", str(tmp_path / "nothing")]) == 1
    assert "no partition table" in capsys.readouterr().err


def test_node_status_prints_update_engine_client_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = {
        "last_checked_time": 1764236000,
        "progress": 0.5,
        "current_operation": "UPDATE_STATUS_DOWNLOADING",
        "new_version": "3100.0.0",
        "new_size": 4096,
    }
    (tmp_path / "update_engine.json").write_text(json.dumps(status))
    assert main(["node", "status", "--state", str(tmp_path)]) == 0
    assert capsys.readouterr().out == (
        "LAST_CHECKED_TIME=1764236000\nPROGRESS=0.500000\nCURRENT_OP=UPDATE_STATUS_DOWNLOADING\n"
        "NEW_VERSION=3100.0.0\nNEW_SIZE=4096\n"
    )
    (tmp_path / "update_engine.json").write_text("{not json")
    assert main(["node", "status", "--state", str(tmp_path)]) == 1
    assert "update_engine.json: not valid JSON" in capsys.readouterr().err
    assert main(["node", "status", "--state", str(tmp_path / "none")]) == 1
    assert "no update_engine status" in capsys.readouterr().err
