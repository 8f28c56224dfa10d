import json
import os
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.util import SHARED_DATA


@pytest.fixture
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"real media not available: {SHARED_DATA} is absent (it sits beside the repo on dev machines)")
    return SHARED_DATA


@dataclass
class S3Server:
    endpoint: str
    client: object  # boto3 S3 client
    beam_args: list  # Beam pipeline options that point its S3 filesystem here


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 API (moto's server) on a free loopback port, for the whole session."""
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint, key, secret, region = f"http://127.0.0.1:{port}", "test", "test", "us-east-1"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret, region_name=region)
    yield S3Server(endpoint, client, [f"--s3_endpoint_url={endpoint}", f"--s3_access_key_id={key}",
                                      f"--s3_secret_access_key={secret}", f"--s3_region_name={region}"])
    server.stop()



def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _TokenEndpoint(BaseHTTPRequestHandler):
    """OAuth token endpoint on loopback: hands out a dummy bearer token (the emulator ignores it)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = json.dumps({"access_token": "emulator", "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    """gcp-storage-emulator on loopback (STORAGE_EMULATOR_HOST), with bucket `bkt`, and
    service-account credentials whose token endpoint is a loopback server: Beam's GCS
    filesystem then finds credentials at once instead of probing for them (about 30 s a
    process) and never reaches Google."""
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    from cryptography.hazmat.primitives.asymmetric import rsa

    tokens = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    threading.Thread(target=tokens.serve_forever, daemon=True).start()
    port = _free_port()
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket="bkt")
    server.start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    creds = tmp_path_factory.mktemp("gcs") / "service-account.json"
    creds.write_text(json.dumps({"type": "service_account", "project_id": "test", "private_key_id": "test", "private_key": key,
                                 "client_email": "tests@test.iam.gserviceaccount.com", "client_id": "1",
                                 "token_uri": f"http://127.0.0.1:{tokens.server_address[1]}/token"}))
    env = {"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}", "GOOGLE_APPLICATION_CREDENTIALS": str(creds), "GOOGLE_CLOUD_PROJECT": "test"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # worker processes inherit them
    yield ["--project=test"]
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()
    tokens.shutdown()
