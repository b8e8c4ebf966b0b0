"""Ray Data on a real local Ray (started once for the module): the plain map_batches idiom, the extract /
diagnose helpers, exactly-once output after a kill and a restart, usage statistics off."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket

import pytest

ray = pytest.importorskip("ray")
pd = pytest.importorskip("pandas")
pq = pytest.importorskip("pyarrow.parquet")

from cancerllm.scale import BatchExtractor  # noqa: E402
from cancerllm.scale import ray as cray  # noqa: E402

PHENOTYPES = ["grade", "laterality"]
_SITES = ["left breast", "right lung", "colon", "prostate", "left kidney"]
TEXTS = [f"Invasive carcinoma, {_SITES[i % 5]}, grade {1 + i % 3}, {i} mm." for i in range(50)]
TEXTS[7], TEXTS[23] = None, ""  # bad rows: error rows, never a failed batch
IDS = [f"r{i:02d}" for i in range(50)]


# ------------------------------------------------------------------------------ loopback-only sockets
def _loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _guard(mp) -> None:
    """Outgoing connections only to AF_UNIX and loopback (Ray talks to itself over 127.0.0.1)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create = socket.create_connection

    def connect(self, address):
        if self.family == getattr(socket, "AF_UNIX", None) or _loopback(address):
            return real_connect(self, address)
        raise RuntimeError(f"tests must not use the network (connection to {address!r})")

    def connect_ex(self, address):
        if self.family == getattr(socket, "AF_UNIX", None) or _loopback(address):
            return real_connect_ex(self, address)
        raise RuntimeError(f"tests must not use the network (connection to {address!r})")

    def create_connection(address, *args, **kwargs):
        if _loopback(address):
            return real_create(address, *args, **kwargs)
        raise RuntimeError(f"tests must not use the network (connection to {address!r})")

    mp.setattr(socket.socket, "connect", connect)
    mp.setattr(socket.socket, "connect_ex", connect_ex)
    mp.setattr(socket, "create_connection", create_connection)
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _loopback_only(_block_sockets, monkeypatch):
    _guard(monkeypatch)


# ------------------------------------------------------------------------------------------ local Ray
@pytest.fixture(scope="module")
def ray_local():
    """A real local Ray for the module, started by ``cancerllm.scale.ray.init`` (what it saw is recorded)."""
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this process")
    seen: dict = {}
    real_init = ray.init

    def recording_init(**kwargs):
        seen.update(env=os.environ.get("RAY_USAGE_STATS_ENABLED"), kwargs=dict(kwargs))
        return real_init(**kwargs)

    with pytest.MonkeyPatch.context() as mp:
        _guard(mp)
        mp.delenv("RAY_USAGE_STATS_ENABLED", raising=False)
        mp.setattr(ray, "init", recording_init)
        cray.init(num_cpus=2, _node_ip_address="127.0.0.1", log_to_driver=False)
        mp.undo()
        try:
            yield seen
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def reference(tiny_model_dir):
    """The rows of BatchExtractor run locally on the same inputs, by id."""
    ex = BatchExtractor(str(tiny_model_dir), phenotypes=PHENOTYPES, batch_size=16)
    out = ex(pd.DataFrame({"id": IDS, "text": TEXTS}))
    return {r["id"]: r for r in out.to_dict("records")}


def _norm(v):
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and v != v:
        return None
    return v


def _rows(records) -> dict:
    """Rows by id, values normalised; an error's "row N: " prefix (its place in its batch) dropped."""
    out = {r["id"]: {k: _norm(v) for k, v in r.items()} for r in records}
    for r in out.values():
        if r.get("error"):
            r["error"] = re.sub(r"^row \d+: ", "", r["error"])
    return out


def _read(folder) -> list[dict]:
    return pq.read_table(str(folder)).to_pylist()


# ------------------------------------------------------------------------------------------------ tests
def test_usage_stats_off_before_init_and_no_dashboard(ray_local):
    assert ray_local["env"] == "0" and ray_local["kwargs"]["include_dashboard"] is False
    assert ray.is_initialized() and os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert cray.init() is ray  # an initialised Ray is used as it is


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_plain_map_batches_idiom_equals_local_rows(ray_local, reference, tiny_model_dir):
    ds = ray.data.from_pandas(pd.DataFrame({"id": IDS, "text": pd.Series(TEXTS, dtype=object)}))
    out = ds.map_batches(BatchExtractor, fn_constructor_kwargs={"model": str(tiny_model_dir),
                                                                "phenotypes": PHENOTYPES, "batch_size": 16},
                         concurrency=2, batch_size=16, batch_format="pandas")
    rows = _rows(out.take_all())
    assert sorted(rows) == IDS
    assert rows == _rows(reference.values())
    assert rows["r07"]["error"] and rows["r23"]["error"] and rows["r07"]["grade"] is None
    assert rows["r00"]["error"] is None


def test_extract_killed_part_way_then_resumed_is_exactly_once(ray_local, reference, tiny_model_dir, tmp_path,
                                                              monkeypatch):
    src = tmp_path / "reports.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(IDS, TEXTS)), "utf-8")
    out = tmp_path / "out"
    kw = {"model": str(tiny_model_dir), "phenotypes": PHENOTYPES, "batch_size": 16, "rows_per_file": 10}

    class Killed(RuntimeError):
        pass

    def kill(path, n):
        raise Killed(path)

    monkeypatch.setattr(cray, "_after_part", kill)
    with pytest.raises(Killed):
        cray.extract(str(src), out, **kw)
    first = _read(out)
    assert len(first) == 10 and not (out / "_SUCCESS").exists()
    (out / ".part-99999-dead.parquet.tmp").write_bytes(b"PAR1 half written")  # a kill during a write

    monkeypatch.setattr(cray, "_after_part", None)
    res = cray.extract(str(src), out, workers=2, **kw)
    assert res["skipped"] == 10 and res["rows"] == 40 and (out / "_SUCCESS").exists()
    assert not list(out.glob(".*.tmp"))
    rows = _read(out)
    assert sorted(r["id"] for r in rows) == IDS  # exactly one row per id
    assert _rows(rows) == _rows(reference.values())
    assert cray.extract(str(src), out, **kw)["rows"] == 0  # nothing left to do
    assert list(pd.read_parquet(out).columns) == BatchExtractor(str(tiny_model_dir), phenotypes=PHENOTYPES).columns()


def test_diagnose_parquet_then_dataset_source_resumes(ray_local, tiny_model_dir, tmp_path):
    src = tmp_path / "notes.parquet"
    pd.DataFrame({"note_id": IDS[:6], "note": pd.Series(TEXTS[:6], dtype=object)}).to_parquet(src)
    out = tmp_path / "dx"
    kw = {"model": str(tiny_model_dir), "batch_size": 4, "max_new_tokens": 3, "id_column": "note_id",
          "text_column": "note", "num_cpus": 1}
    assert cray.diagnose(str(src), out, **kw)["rows"] == 6
    ds = ray.data.from_pandas(pd.DataFrame({"note_id": IDS[4:10], "note": pd.Series(TEXTS[4:10], dtype=object)}))
    res = cray.diagnose(ds, out, **kw)
    assert res == {"output": str(out), "rows": 4, "skipped": 6, "parts": 1}
    rows = _read(out)
    assert sorted(r["id"] for r in rows) == IDS[:10] and rows[0]["error"] is None
    assert [r for r in rows if r["id"] == "r07"][0]["error"]
    with pytest.raises(Exception, match="folder"):
        cray.diagnose(ds, src, **kw)


def test_cli_engine_ray_gives_the_local_rows(ray_local, tiny_model_dir, tmp_path):
    """`cancerllm extract --engine ray` and `--engine local` (.parquet) write the same rows."""
    from tests.scale._cli_engines import engine_rows

    local, ray_rows = engine_rows(tiny_model_dir, tmp_path, ["local", "ray"])
    assert local == ray_rows and [r["id"] for r in local] == ["a1", "b2", "c3", "d4"]
    assert local[1]["error"].startswith("the text is empty") and local[1]["grade"] is None


def test_cli_diagnose_on_ray(ray_local, tiny_model_dir, tmp_path):
    import json as _json

    from typer.testing import CliRunner

    from cancerllm.cli import app

    src = tmp_path / "notes.jsonl"
    src.write_text("".join(_json.dumps({"id": f"n{i}", "text": t}) + "\n"
                           for i, t in enumerate(["cough and weight loss", "", "a mass in the left breast"])))
    res = CliRunner().invoke(app, ["diagnose", str(src), "--model", str(tiny_model_dir), "--max-new-tokens", "4",
                                   "-o", str(tmp_path / "dx.parquet"), "--engine", "ray", "-q"])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(tmp_path / "dx.parquet").sort_values("id")
    assert list(frame["id"]) == ["n0", "n1", "n2"] and frame["error"].notna().tolist() == [False, True, False]
