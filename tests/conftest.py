"""Shared fixtures: a real S3-protocol server on loopback, storage roots, pipeline settings."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from pathlib import Path

import luigi.configuration
import pytest

from stages import storage

BUCKET = "hpa-test-bucket"
# Three real HPA fields of view (Kaggle test layout; provenance and licence in its README.md).
REAL_DATA = Path(__file__).resolve().parent / "data" / "hpa-real"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's server mode on 127.0.0.1: S3 over real HTTP, started and stopped by the tests themselves."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved_env = {key: os.environ.get(key) for key in S3_ENV}
    os.environ.update(S3_ENV)
    config = luigi.configuration.get_config()
    if not config.has_section("s3"):
        config.add_section("s3")
    config.set("s3", "endpoint_url", endpoint)
    storage.reset_s3_client()
    storage.s3_client().create_bucket(Bucket=BUCKET)
    yield endpoint
    config.remove_option("s3", "endpoint_url")
    storage.reset_s3_client()
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    server.stop()


@pytest.fixture
def s3_root(s3_endpoint):
    """A fresh prefix in the test bucket."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:8]}"


@pytest.fixture(params=["local", "s3"])
def any_root(request, tmp_path):
    """The same test against a local folder and against the S3 server."""
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("s3_root")


@contextlib.contextmanager
def overridden(values: dict[str, dict]):
    """luigi.cfg keys (section -> key -> value) set for a block, as a file or the command line would, and
    restored after."""
    config = luigi.configuration.get_config()
    saved = {}
    try:
        for section, keys in values.items():
            if not config.has_section(section):
                config.add_section(section)
            for key, value in keys.items():
                saved.setdefault((section, key), config.get(section, key, None))
                config.set(section, key, str(value))
        yield
    finally:
        for (section, key), value in saved.items():
            if value is None:
                config.remove_option(section, key)
            else:
                config.set(section, key, value)


@pytest.fixture
def config_section():
    """``config_section(section, key=value, ...)``: set luigi.cfg keys for one test, restored after."""
    with contextlib.ExitStack() as stack:
        yield lambda section, **values: stack.enter_context(overridden({section: values}))


@pytest.fixture
def pipeline_settings(config_section):
    """Set [pipeline] keys for one test (as luigi.cfg or --pipeline-* would)."""
    return functools.partial(config_section, "pipeline")


@pytest.fixture
def runner_settings(config_section):
    return functools.partial(config_section, "runner")


@pytest.fixture
def detector_settings(config_section):
    return functools.partial(config_section, "detector")


@pytest.fixture
def segment_config(config_section):
    return functools.partial(config_section, "segment")


@pytest.fixture(autouse=True)
def fresh_input_listing():
    """Each test is a new run: the input is listed again (a process lists it once, see stages.inputs)."""
    from stages import inputs

    inputs.refresh()
    inputs.pin_listings({})
