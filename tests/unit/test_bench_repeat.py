"""`bench.repeat`'s summary: every run's numbers, and per target the median, range and verdict."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

import bench._report as report
from bench.repeat import BEGIN, END, main, summarise

STARTED = datetime(2026, 11, 21, 13, 0, tzinfo=timezone.utc)


def runs(*values):
    """Runs with the chat TTFD and share targets set (the others not measured)."""
    return [{"revision": "abc1234", "chat_added_ttfd_ms": ttfd, "chat_share_pct": share} for ttfd, share in values]


def test_the_summary_has_every_run_and_the_median_range_and_count_per_target():
    text = summarise(runs((1.0, 48.0), (2.5, 51.0), (1.5, 50.0)), STARTED)
    assert "| 2 | +2.50 ms | 51.0 % | – | – | – | – |" in text
    assert "median +1.50 ms (range +1.00 ms to +2.50 ms), **met** at the median; met in 2 of 3 runs" in text
    assert "median 50.0 % (range 48.0 % to 51.0 %), **met** at the median; met in 2 of 3 runs" in text
    assert "proxy path: added p50 TTFD at c=1 (≤ 1 ms added): not measured." in text
    assert "gateway code `abc1234`" in text


def test_a_target_missed_at_the_median_says_so():
    text = summarise(runs((3.0, 40.0), (2.5, 45.0), (1.0, 60.0)), STARTED)
    assert "median +2.50 ms (range +1.00 ms to +3.00 ms), **missed** at the median; met in 1 of 3 runs" in text


def test_a_run_without_a_number_is_listed_but_not_counted():
    text = summarise(runs((1.0, None), (3.0, 60.0)), STARTED)
    assert "| 1 | +1.00 ms | – |" in text
    assert "met in 1 of 1 runs" in text


def test_the_floor_is_summarised_as_a_reference_without_a_verdict():
    text = summarise([{"revision": "abc1234", "proxy_added_ttfd_ms": 1.5, "floor_added_ttfd_ms": ms}
                      for ms in (0.9, 1.1, 1.0)], STARTED)
    assert "| 1 | – | – | – | – | +1.50 ms | +0.90 ms |" in text
    assert ("stack floor (bytes passed through): added p50 TTFD at c=1 (reference, not a target): median +1.00 ms "
            "(range +0.90 ms to +1.10 ms).") in text


@pytest.mark.parametrize("argv", [["-n", "0"], ["--", "--write"], ["--", "--json", "x"]])
def test_options_that_belong_to_this_command_are_refused(argv):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_write_doc_replaces_only_the_marked_section(tmp_path, monkeypatch):
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"intro\n{BEGIN}\nold runs\n{END}\nlog\n")
    monkeypatch.setattr(report, "DOC", doc)
    report.write_doc("new runs\n", BEGIN, END)
    assert doc.read_text() == f"intro\n{BEGIN}\nnew runs\n{END}\nlog\n"


def test_write_doc_refuses_a_document_without_the_markers(tmp_path, monkeypatch):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("no markers here\n")
    monkeypatch.setattr(report, "DOC", doc)
    with pytest.raises(report.BenchError):
        report.write_doc("results\n")
    assert doc.read_text() == "no markers here\n"
