"""Shared fixtures: the shipped SmolLM2 model (scripts/fetch-models.sh) and the CLI built beside
the checkout, which the tests compare against."""

import os
import pathlib

import pytest

import insitu

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = pathlib.Path(os.environ.get(
    "INSITU_TEST_MODEL",
    pathlib.Path.home() / ".cache/insitu/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
CLI = pathlib.Path(os.environ.get("INSITU_CLI", ROOT / "build/bin/insitu"))
THREADS = 2


@pytest.fixture(scope="session")
def model_path() -> pathlib.Path:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} missing: run scripts/fetch-models.sh")
    return MODEL


@pytest.fixture(scope="session")
def cli() -> pathlib.Path:
    if not CLI.exists():
        pytest.fail(f"{CLI} missing: build the CLI first (cmake --build build)")
    return CLI


@pytest.fixture(scope="session")
def model(model_path) -> insitu.Model:
    return insitu.Model.load(model_path, threads=THREADS, progress=False)
