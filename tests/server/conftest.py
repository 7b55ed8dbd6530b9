"""Fixtures for the `insitu serve` tests: a server process on a free port of 127.0.0.1.

The binary is $INSITU_BIN (default build/bin/insitu) and the model $INSITU_TEST_MODEL (default
SmolLM2-135M-Instruct Q4_1 from scripts/fetch-models.sh). A missing binary or model is an error,
not a skip: a suite that runs nothing must not pass.
"""
import http.client
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("INSITU_BIN", ROOT / "build" / "bin" / "insitu"))
MODEL = pathlib.Path(os.environ.get(
    "INSITU_TEST_MODEL",
    pathlib.Path.home() / ".cache" / "insitu" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))
API_KEY = "sk-insitu-test"
MAX_BODY = 256 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, *extra, api_key=None):
        assert BIN.exists(), f"{BIN} is missing: build the insitu_cli target first"
        assert MODEL.exists(), f"{MODEL} is missing: run scripts/fetch-models.sh"
        self.port = free_port()
        self.api_key = api_key
        args = [str(BIN), "serve", "--format", "gguf", "-f", str(MODEL), "--host", "127.0.0.1",
                "--port", str(self.port), *extra]
        if api_key:
            args += ["--api-key", api_key]
        self.log_path = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / f"insitu-serve-{self.port}.log"
        self.log = open(self.log_path, "w+")
        env = dict(os.environ)
        env.pop("INSITU_API_KEY", None)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.wait_healthy()

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"server exited early:\n{self.output()}"
            try:
                status, _ = self.request("GET", "/health", auth=False)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not healthy after {timeout} s:\n{self.output()}")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def request(self, method, path, body=None, auth=True, headers=None, timeout=120):
        """One HTTP request; returns (status, parsed JSON or text)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        h = dict(headers or {})
        if auth and self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data.decode(errors="replace")

    def metric(self, name):
        status, text = self.request("GET", "/metrics")
        assert status == 200
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"metric {name} missing:\n{text}")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def server():
    """The shared server: 4 slots, an API key, a small body limit."""
    s = ServerProcess("--parallel", "4", "--ctx-size", "1024", "--max-body", str(MAX_BODY),
                      "--served-model-name", "smollm2", api_key=API_KEY)
    yield s
    code = s.stop()
    assert code == 0, f"server exit code {code} after SIGTERM:\n{s.output()[-4000:]}"


@pytest.fixture(scope="session")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=API_KEY, max_retries=0,
                         timeout=300)
