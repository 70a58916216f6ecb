"""A recording fake of the KFP v2beta1 REST API on 127.0.0.1, for submission tests."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeKfp:
    """Holds pipelines/experiments/runs and every request it was sent."""

    requests: list[Recorded] = field(default_factory=list)
    pipelines: dict[str, str] = field(default_factory=dict)  # name -> id
    experiments: dict[str, str] = field(default_factory=dict)
    final_state: str = "SUCCEEDED"
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeKfp:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, payload: dict[str, Any], status: int = 200) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> Recorded:
                length = int(self.headers.get("Content-Length") or 0)
                parsed = urlparse(self.path)
                entry = Recorded(
                    self.command,
                    parsed.path,
                    parse_qs(parsed.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                fake.requests.append(entry)
                return entry

            def do_GET(self) -> None:
                entry = self._record()
                if entry.path.endswith("/healthz"):
                    return self._reply({"multi_user": False})
                if entry.path == "/apis/v2beta1/pipelines":
                    name = _filter_value(entry.query)
                    if name in fake.pipelines:
                        return self._reply(
                            {
                                "pipelines": [
                                    {"pipeline_id": fake.pipelines[name], "display_name": name}
                                ],
                                "total_size": 1,
                            }
                        )
                    return self._reply({})
                if entry.path.startswith("/apis/v2beta1/pipelines/") and entry.path.endswith(
                    "/versions"
                ):
                    pipeline_id = entry.path.split("/")[4]
                    return self._reply(
                        {
                            "pipeline_versions": [
                                {"pipeline_id": pipeline_id, "pipeline_version_id": "version-1"}
                            ],
                            "total_size": 1,
                        }
                    )
                if entry.path == "/apis/v2beta1/experiments":
                    name = _filter_value(entry.query)
                    if name in fake.experiments:
                        return self._reply(
                            {
                                "experiments": [
                                    {"experiment_id": fake.experiments[name], "display_name": name}
                                ],
                                "total_size": 1,
                            }
                        )
                    return self._reply({})
                if entry.path.startswith("/apis/v2beta1/runs/"):
                    return self._reply(
                        {"run_id": entry.path.rsplit("/", 1)[1], "state": fake.final_state}
                    )
                return self._reply({"error": "not found"}, 404)

            def do_POST(self) -> None:
                entry = self._record()
                if entry.path == "/apis/v2beta1/pipelines/upload":
                    name = entry.query["name"][0]
                    fake.pipelines[name] = f"pipeline-{len(fake.pipelines) + 1}"
                    return self._reply({"pipeline_id": fake.pipelines[name], "display_name": name})
                if entry.path == "/apis/v2beta1/pipelines/upload_version":
                    return self._reply(
                        {
                            "pipeline_id": entry.query["pipelineid"][0],
                            "pipeline_version_id": "version-2",
                            "display_name": entry.query["name"][0],
                        }
                    )
                if entry.path == "/apis/v2beta1/experiments":
                    name = json.loads(entry.body)["display_name"]
                    fake.experiments[name] = f"experiment-{len(fake.experiments) + 1}"
                    return self._reply(
                        {"experiment_id": fake.experiments[name], "display_name": name}
                    )
                if entry.path == "/apis/v2beta1/runs":
                    return self._reply(
                        {"run_id": "run-1", "state": "PENDING", **json.loads(entry.body)}
                    )
                return self._reply({"error": "not found"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def find(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]


def _filter_value(query: dict[str, list[str]]) -> str | None:
    raw = query.get("filter", [None])[0]
    if not raw:
        return None
    predicates = json.loads(raw).get("predicates", [])
    return next((p.get("string_value") or p.get("stringValue") for p in predicates), None)
