"""Apache Spark: extract/diagnose through mapInPandas on a real local SparkSession, and the exactly-once,
resumable Parquet job (killed after its first slice, restarted: one row per id, equal to an uninterrupted run)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys

import pytest

pyspark = pytest.importorskip("pyspark")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from cancerllm.scale import BatchDiagnoser, BatchExtractor  # noqa: E402
from cancerllm.scale import spark as spark_mod  # noqa: E402

# pyspark 4.x warns about pandas >= 3 and uses its deprecated copy= keyword: not ours to fix
pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]

PHEN = ["grade", "laterality"]
BASE = ["Invasive ductal carcinoma, left breast, G2.", "Squamous cell carcinoma, right lung, G3.",
        "Adenocarcinoma of the colon, moderately differentiated.", "Benign fibroadenoma, right breast."]
TEXTS: list = [f"{BASE[i % 4]} Case {i}." for i in range(48)] + [None, ""]
IDS = [f"r{i:03d}" for i in range(len(TEXTS))]


def _loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


@pytest.fixture(autouse=True)
def _allow_loopback(_block_sockets, monkeypatch):
    """py4j talks to the local JVM over TCP on localhost: allow loopback (and AF_UNIX), refuse the rest."""
    # the conftest fixture has patched the socket class; the originals are those of its C base
    real_connect, real_connect_ex = socket.socket.__mro__[1].connect, socket.socket.__mro__[1].connect_ex

    def ok(sock, address) -> bool:
        return sock.family == getattr(socket, "AF_UNIX", None) or _loopback(address)

    def connect(self, address):
        if not ok(self, address):
            raise OSError("tests must not use the network (only loopback is allowed here)")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not ok(self, address):
            raise OSError("tests must not use the network (only loopback is allowed here)")
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        if not _loopback(address):
            raise OSError("tests must not use the network (only loopback is allowed here)")
        return _real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    yield


_real_create_connection = socket.create_connection  # unpatched: modules are imported before any test runs


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    saved = {k: os.environ.get(k) for k in [*env, "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"]}
    os.environ.update(env)
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = (SparkSession.builder.master("local[2]").appName("cancerllm-tests")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
               .config("spark.default.parallelism", "2").config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1").config("spark.sql.execution.arrow.pyspark.enabled", "true"))
    for k, v in env.items():
        builder = builder.config(f"spark.executorEnv.{k}", v)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _local(model_dir, ids=IDS, texts=TEXTS):
    ex = BatchExtractor(str(model_dir), phenotypes=PHEN, batch_size=8)
    return ex, ex(pd.DataFrame({"id": ids, "text": texts}))


def _norm(df):
    """Rows as comparable records (Spark's arrays come back as numpy arrays: make them lists)."""
    df = df.sort_values("id").reset_index(drop=True)
    recs = df.to_dict("records")
    for r in recs:
        for k, v in r.items():
            if v is not None and hasattr(v, "tolist") and not isinstance(v, str):
                r[k] = list(v.tolist())
            elif isinstance(v, float) and v != v:
                r[k] = None
        if r.get("error"):  # "row N: why": N is the place in the engine's batch, which the engines cut apart
            r["error"] = re.sub(r"^row \d+: ", "", r["error"])
    return recs


def test_extract_rows_equal_local_predictor_and_typed_schema(spark, tiny_model_dir):
    from pyspark.sql.types import ArrayType, BooleanType, StringType

    sdf = spark.createDataFrame(pd.DataFrame({"report_id": IDS, "body": pd.Series(TEXTS, dtype=object)}),
                                schema="report_id string, body string").repartition(2)
    out = spark_mod.extract(sdf, id_col="report_id", text_col="body", model=str(tiny_model_dir),
                            phenotypes=PHEN, batch_size=8)
    fields = {f.name: f.dataType for f in out.schema.fields}
    assert fields["grade"] == ArrayType(StringType(), True) and fields["laterality"] == ArrayType(StringType(), True)
    assert fields["needs_review"] == BooleanType() and fields["raw_grade"] == StringType()
    ex, ref = _local(tiny_model_dir)
    assert out.columns == ex.columns()
    got = out.toPandas()
    assert len(got) == len(IDS) and sorted(got["id"]) == IDS
    assert _norm(got) == _norm(ref)
    bad = got.set_index("id").loc[["r048", "r049"]]
    assert bad["error"].notna().all() and bad["grade"].isna().all()
    good = got[~got["id"].isin(["r048", "r049"])]
    assert good["error"].isna().all() and good["input_sha256"].str.len().eq(64).all()


def test_diagnose(spark, tiny_model_dir):
    sdf = spark.createDataFrame([("n1", "cough and weight loss"), ("n2", "")], schema="id string, text string")
    out = spark_mod.diagnose(sdf, model=str(tiny_model_dir), max_new_tokens=4).toPandas().sort_values("id")
    assert list(out.columns) == BatchDiagnoser(str(tiny_model_dir)).columns()
    assert pd.isna(out["error"].tolist()[0]) and out["error"].tolist()[1]
    assert isinstance(out["diagnosis"].tolist()[0], str)
    with pytest.raises(Exception, match="column"):
        spark_mod.diagnose(sdf, text_col="note", model=str(tiny_model_dir))


def test_run_killed_after_first_slice_and_restarted_is_exactly_once(spark, tiny_model_dir, tmp_path, monkeypatch):
    src = tmp_path / "reports.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(IDS, TEXTS)), encoding="utf-8")
    kw = {"spark": spark, "model": str(tiny_model_dir), "phenotypes": PHEN, "batch_size": 8, "slice_size": 20}

    full = spark_mod.run(src, tmp_path / "full", **kw)
    assert full["written"] == len(IDS) and full["parts"] == 3

    class Killed(RuntimeError):
        pass

    def die(part):
        raise Killed(str(part))

    monkeypatch.setattr(spark_mod, "_after_slice", die)
    with pytest.raises(Killed):
        spark_mod.run(src, tmp_path / "out", **kw)
    (tmp_path / "out" / ".tmp-leftover.parquet").write_bytes(b"half-written")  # a kill mid-write
    first = pd.read_parquet(tmp_path / "out" / "part-00000.parquet")
    assert 0 < len(first) < len(IDS)
    monkeypatch.setattr(spark_mod, "_after_slice", lambda part: None)
    again = spark_mod.run(src, tmp_path / "out", **kw)
    assert again["skipped"] == len(first) and again["written"] == len(IDS) - len(first)
    assert not list((tmp_path / "out").glob(".tmp-*"))

    got = pd.read_parquet(tmp_path / "out")
    assert sorted(got["id"]) == IDS  # exactly one row per id
    assert _norm(got) == _norm(pd.read_parquet(tmp_path / "full"))
    # a third run has nothing to do
    assert spark_mod.run(src, tmp_path / "out", **kw)["written"] == 0


def test_run_reads_parquet(spark, tiny_model_dir, tmp_path):
    src = tmp_path / "in.parquet"
    pd.DataFrame({"note_id": [1, 2, 3], "body": ["Left breast carcinoma, G1.", None, "Right lung, G3."]}).to_parquet(src)
    res = spark_mod.run(src, tmp_path / "o", spark=spark, id_col="note_id", text_col="body",
                        model=str(tiny_model_dir), phenotypes=["grade"], batch_size=4)
    got = pd.read_parquet(tmp_path / "o").sort_values("id")
    assert res["written"] == 3 and got["id"].tolist() == ["1", "2", "3"] and got["error"].notna().tolist() == \
        [False, True, False]


def test_only_loopback_is_allowed():
    with pytest.raises(OSError, match="network"):
        socket.create_connection(("10.255.255.1", 80), timeout=0.1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(OSError, match="network"):
            s.connect(("192.0.2.1", 80))
    finally:
        s.close()


def test_cli_engine_spark_gives_the_local_rows(spark, tiny_model_dir, tmp_path):
    """`cancerllm extract --engine spark` and `--engine local` (.parquet) write the same rows."""
    from tests.scale._cli_engines import engine_rows

    local, spark_rows = engine_rows(tiny_model_dir, tmp_path, ["local", "spark"])
    assert local == spark_rows and [r["id"] for r in local] == ["a1", "b2", "c3", "d4"]
