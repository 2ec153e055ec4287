"""Control characters from outside data never reach the terminal raw."""

from coreroll.textsafe import visible


def test_printable_text_is_returned_unchanged() -> None:
    assert visible("node-01 Ünïcode 3815.2.1") == "node-01 Ünïcode 3815.2.1"


def test_escape_sequences_are_spelled_out() -> None:
    assert visible("\x1b]0;pwned\x07") == "\\x1b]0;pwned\\x07"
    assert visible("\x1b[2J") == "\\x1b[2J"


def test_newlines_c1_controls_and_bidi_overrides_are_made_visible() -> None:
    assert visible("a\nb\tc\r") == "a\\nb\\tc\\r"
    assert visible("\x9b31m") == "\\x9b31m"
    assert visible("\u202eevil") == "\\u202eevil"
    assert visible("\x7f") == "\\x7f"
