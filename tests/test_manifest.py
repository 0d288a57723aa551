"""A figure's selection.json (paltest.testbed.manifest): damage is detected, never read
as different content (audit 2, N8)."""

from __future__ import annotations

import hashlib
import json
import random
import shutil

import pytest

from paltest import cli
from paltest.testbed import experiments


@pytest.fixture(scope="module")
def figure(tmp_path_factory):
    out = tmp_path_factory.mktemp("figure")
    p = experiments.plan(8, problems=["mf-rank4", "mf-rank1"], optimizers=["sgd", "sls"],
                         seeds=2, epochs=1, quick=True)
    experiments.run_figure(p, out, backend="sequential")
    return out


def _content(result):
    return (result.plan, result.floors, result.selection, sorted(result.table["run_id"]),
            sorted(result.references["run_id"]))


def _sealed(doc):
    """``doc`` with the checksum its content would get (the module's documented rule)."""
    content = {k: v for k, v in doc.items() if k != "sha256"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return {**content, "sha256": hashlib.sha256(text.encode()).hexdigest()}


def test_random_bit_flips_never_change_what_is_read(figure, tmp_path):
    """60 random bit flips: each is refused (SelectionFileError naming the file) or, if
    the text still parses to the same content, read as the original. On the old reader
    27 of 60 loaded with different content (a seed dropped, a floor moved)."""
    copy = tmp_path / "copy"
    shutil.copytree(figure, copy)
    path = copy / "selection.json"
    original = path.read_bytes()
    expected = _content(experiments.load_figure(copy))
    rng = random.Random(8)
    refused = 0
    for _ in range(60):
        data = bytearray(original)
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(data))
        try:
            got = _content(experiments.load_figure(copy))
        except experiments.SelectionFileError as err:
            assert str(path) in str(err)
            refused += 1
            continue
        assert got == expected, f"byte {i}: a damaged file was read as different content"
    assert refused >= 50


@pytest.mark.parametrize(("edit", "words"), [
    (lambda d: d["plan"].__setitem__("seeds", "oops"), "plan.seeds"),
    (lambda d: d["plan"].__setitem__("epochs", -5), "plan.epochs"),
    (lambda d: d["plan"].__setitem__("start_ulps", 1.5), "plan.start_ulps"),
    (lambda d: d["plan"].__setitem__("extra", 1), r"plan: missing the keys \[\], unexpected "
     r"keys \['extra'\]"),
    (lambda d: d.__setitem__("floors", {**d["floors"], "mf-rank1": "0.03"}), "floors.mf-rank1"),
    (lambda d: d["selection"]["mf-rank4"]["sgd"].__setitem__(
        "choice", d["selection"]["mf-rank4"]["sgd"].pop("chosen")), "selection.mf-rank4.sgd"),
    (lambda d: d.__setitem__("final_run_ids", d["final_run_ids"][1:] + [7]), "final_run_ids"),
])
def test_edited_content_is_refused_even_with_its_checksum(figure, tmp_path, edit, words):
    """A file edited (a renamed key used to be a KeyError traceback; ``plan.seeds:
    "oops"`` and ``plan.epochs: -5`` were accepted), its checksum recomputed: the
    structure and type checks still refuse it, naming the field."""
    copy = tmp_path / "copy"
    shutil.copytree(figure, copy)
    path = copy / "selection.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(_sealed(doc)))
    with pytest.raises(experiments.SelectionFileError, match=words) as info:
        experiments.load_figure(copy)
    assert str(path) in str(info.value)


def test_a_plan_without_start_ulps_is_read_as_zero(figure, tmp_path):
    """Files written before plans recorded ``start_ulps`` stay readable (no moved start)."""
    copy = tmp_path / "copy"
    shutil.copytree(figure, copy)
    path = copy / "selection.json"
    doc = json.loads(path.read_text())
    assert doc["plan"]["start_ulps"] == 0
    del doc["plan"]["start_ulps"]
    path.write_text(json.dumps(_sealed(doc)))
    assert experiments.load_figure(copy).plan == experiments.load_figure(figure).plan


def test_a_moved_start_plan_is_written_and_read(tmp_path):
    """A figure with ``start_ulps`` writes its selection file and reads it back (the
    writer's own check used to refuse the key)."""
    p = experiments.plan(8, problems=["mf-rank1"], optimizers=["sgd"], seeds=1, epochs=1,
                         quick=True, start_ulps=-1)
    result = experiments.run_figure(p, tmp_path, backend="sequential")
    assert experiments.load_figure(tmp_path).plan.start_ulps == -1 == result.plan.start_ulps


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,  # used to be a RecursionError
    '{"format_version": 2, "plan": {}}',  # the format before the checksum
    "\x00\x01",
])
def test_unreadable_text_is_refused(figure, tmp_path, text):
    copy = tmp_path / "copy"
    shutil.copytree(figure, copy)
    (copy / "selection.json").write_text(text)
    with pytest.raises(experiments.SelectionFileError, match="selection.json"):
        experiments.load_figure(copy)


def test_a_key_given_twice_is_refused(figure, tmp_path):
    """JSON keeps the last of two equal keys silently; the reader refuses them."""
    copy = tmp_path / "copy"
    shutil.copytree(figure, copy)
    path = copy / "selection.json"
    text = path.read_text()
    path.write_text('{"floors": {"mf-rank4": 0.0, "mf-rank1": 0.0},' + text.lstrip()[1:])
    with pytest.raises(experiments.SelectionFileError, match="'floors' is given twice"):
        experiments.load_figure(copy)


def test_plot_refuses_a_damaged_selection_file(figure, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(figure, copy)
    path = copy / "selection.json"
    doc = json.loads(path.read_text())
    doc["floors"]["mf-rank1"] = doc["floors"]["mf-rank1"] - 0.1  # the moved floor
    path.write_text(json.dumps(doc))
    assert cli.main(["plot", str(copy)]) == 1
    err = capsys.readouterr().err
    assert f"paltest: error: {path}: its content does not match its checksum" in err
    assert "Traceback" not in err
