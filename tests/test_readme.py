"""The README as a newcomer follows it: every command that can run offline does, and its figures are
the code's own."""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import pytest

from src.build.accelerators import GpuRequest
from src.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
MAX_README_BYTES = 25_000


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\s*```", README, re.S)


def project_commands() -> list[str]:
    """Every `python -m src.pipeline ...` command in the README's shell blocks, continuations joined."""
    commands = []
    for block in code_blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("python -m src.pipeline "):
                commands.append(line)
    return commands


def test_the_readme_stays_short_and_opens_with_the_two_commands():
    assert len(README.encode()) <= MAX_README_BYTES
    first = code_blocks("bash")[0].splitlines()
    assert [line.split("#")[0].strip() for line in first] == [
        "bash scripts/run_local.sh",
        "bash scripts/test.sh",
    ]


def test_every_offline_command_in_the_readme_runs(tmp_path, monkeypatch, captured):
    # Given every project command the README shows (submissions as --dry-run, compiles anywhere)
    commands = project_commands()
    assert any("submit vertex" in c for c in commands) and any("submit kfp" in c for c in commands)
    assert any("--spot" in c for c in commands) and any(" compile" in c for c in commands)
    monkeypatch.chdir(tmp_path)
    for command in commands:
        args = shlex.split(command)[3:]
        if args[0] == "compile":
            args = [*args, "--out-dir", str(tmp_path / "out")]
        elif "--dry-run" not in args:
            continue  # sends a run: the dry-run form of the same command is in the README too
        # When a newcomer runs it, then it succeeds (and sends nothing)
        assert main(args) == 0, command
    assert captured["requests"] == []


def test_the_python_snippet_builds_the_job_it_says(monkeypatch, captured):
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setattr(
        google.auth, "default", lambda **kwargs: (AnonymousCredentials(), "my-project")
    )
    monkeypatch.chdir(ROOT)
    (snippet,) = code_blocks("python")
    exec(compile(textwrap.dedent(snippet), "README.md", "exec"), {})
    (request,) = captured["requests"]
    assert request["job"].runtime_config.gcs_output_directory == "gs://my-bucket/pipeline-root"
    assert request["job"].service_account == "lwgan-trainer@my-project.iam.gserviceaccount.com"


@pytest.mark.parametrize("accelerator", ["NVIDIA_TESLA_T4", "NVIDIA_L4"])
def test_the_gke_requests_table_is_what_the_compiled_task_asks_for(accelerator):
    row = re.search(
        rf"^\s*\| `{accelerator}` \| (\S+) \| (\S+), (\S+) \| (\S+), (\S+) \| (\S+) \|$",
        README,
        re.M,
    )
    assert row, f"no row for {accelerator}"
    gpu = GpuRequest(accelerator).validated("kfp")
    assert row.groups() == (
        gpu.machine.name, *gpu.gke_requests(), gpu.cpu_limit, gpu.memory_limit, gpu.shm_size(),
    )  # fmt: skip


def test_the_documents_the_readme_links_exist():
    for link in re.findall(r"\]\((docs/[^)#]+)", README):
        assert (ROOT / link).is_file(), link
