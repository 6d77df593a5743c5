"""The results journal: durable appends, tolerant reads, nothing silently dropped."""

from __future__ import annotations

import errno
import json
import os

import pytest

from donkeyrl.research import Journal, JournalWriteError, TrialRecord


def rec(trial: int, value: float = 1.0) -> TrialRecord:
    return TrialRecord(trial, {"learning_rate": 1e-3}, "ok", objective=value, mean_reward=value)


def test_append_and_read_round_trip(tmp_path):
    j = Journal(tmp_path / "results.jsonl")
    for t in (1, 2, 3):
        j.append(rec(t, t * 10.0))
    read = j.read()
    assert [r.trial for r in read.records] == [1, 2, 3]
    assert [r.objective for r in read.records] == [10.0, 20.0, 30.0]
    assert read.problems == []
    first = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])
    for key in ("trial", "timestamp", "params", "mean_reward", "std_reward", "model_path",
                "champion", "elapsed_sec", "run_status", "objective", "seed", "metrics"):
        assert key in first


def test_torn_last_line_is_tolerated_and_not_glued_to_next_record(tmp_path):
    path = tmp_path / "results.jsonl"
    j = Journal(path)
    j.append(rec(1))
    j.append(rec(2))
    with open(path, "ab") as fh:  # power cut in the middle of record 3
        fh.write(b'{"trial": 3, "params": {"learn')
    read = j.read()
    assert [r.trial for r in read.records] == [1, 2]
    assert [(p.line, p.kind) for p in read.problems] == [(3, "torn")]
    j.append(rec(4))
    read = j.read()
    assert [r.trial for r in read.records] == [1, 2, 4]
    assert [(p.line, p.kind) for p in read.problems] == [(3, "corrupt")]
    assert b'{"trial": 3, "params": {"learn\n' in path.read_bytes()  # never rewritten


def test_corrupt_lines_reported_with_line_numbers(tmp_path):
    path = tmp_path / "results.jsonl"
    good = [json.dumps(rec(t).to_json()) for t in (1, 2, 3)]
    path.write_text("\n".join([good[0], "not json at all", good[1], '{"trial": "x", "params": {}}',
                               "", '[1, 2]', good[2]]) + "\n")
    read = Journal(path).read()
    assert [r.trial for r in read.records] == [1, 2, 3]
    assert [(p.line, p.kind) for p in read.problems] == [(2, "corrupt"), (4, "corrupt"),
                                                          (6, "corrupt")]
    assert "trial" in read.problems[1].detail


def test_duplicate_trial_reported_and_first_kept(tmp_path):
    j = Journal(tmp_path / "r.jsonl")
    j.append(rec(1, 5.0))
    j.append(rec(1, 7.0))
    read = j.read()
    assert [r.objective for r in read.records] == [5.0]
    assert [(p.line, p.kind) for p in read.problems] == [(2, "duplicate")]


def test_disk_full_raises_clear_error_and_keeps_records(tmp_path, monkeypatch):
    path = tmp_path / "results.jsonl"
    j = Journal(path)
    j.append(rec(1))
    before = path.read_bytes()

    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(JournalWriteError, match="disk is full.*intact"):
        j.append(rec(2))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [r.trial for r in j.read().records] == [1]


def test_unwritable_location_raises_journal_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalWriteError, match="cannot open"):
        Journal(blocker / "results.jsonl").append(rec(1))


def test_spec_minimal_schema_loads(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"trial": 42, "timestamp": "2026-04-13T03:14:15.926535",
                                "params": {"n_steer": 7}, "mean_reward": 127.45,
                                "std_reward": 18.3, "model_path": "m.zip", "champion": True,
                                "elapsed_sec": 187.4, "run_status": "ok"}) + "\n")
    (r,) = Journal(path).read().records
    assert r.objective == 127.45 and r.objective_name == "mean_reward" and r.champion
    assert r.value_of("mean_reward") == 127.45 and r.value_of("driving_score") is None


def test_nan_objective_written_as_null(tmp_path):
    j = Journal(tmp_path / "r.jsonl")
    j.append(TrialRecord(1, {}, "nan", objective=float("nan")))
    assert json.loads((tmp_path / "r.jsonl").read_text())["objective"] is None
