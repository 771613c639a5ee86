"""The AI BOM check in a child process, so that a verify command's two cores share the work.

Checking an AI BOM against the CycloneDX 1.6 schema costs a verify command a third of its own
work, mostly importing jsonschema and loading the schemas. ``bitwright verify`` starts
:class:`AibomCheckProcess` with the BOM's bytes (read bounded, the same bytes the coverage
check hashes) before its other checks; the child imports and validates on the other core
while the parent checks signatures, and answers with the model files the BOM lists, or the
error, as one JSON line::

    python -m bitwright.verify._aibom_worker MAX_DEPTH < aibom.cdx.json

The child is bitwright's own: an answer it cannot give is an operational error, never a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from bitwright.errors import BitwrightError, OperationalError, VerificationFailed
from bitwright.fileio import load_json
from bitwright.model import Sha256, is_sha256

__all__ = ["AibomCheckProcess", "parse_aibom"]


class AibomCheckProcess:
    """``parse_aibom`` of some bytes, run in a child process; use as a context manager."""

    def __init__(self, data: bytes, *, max_depth: int) -> None:
        package_parent = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        self._child = subprocess.Popen(
            [sys.executable, "-m", "bitwright.verify._aibom_worker", str(max_depth)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self._data = data

    def result(self) -> dict[str, Sha256]:
        """The model files the BOM lists (path -> sha256).

        Raises:
            VerificationFailed: the BOM is not valid CycloneDX or names no model's files.
            OperationalError: the child failed to answer.
        """
        out, err = self._child.communicate(self._data, timeout=600)
        try:
            answer = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
            raise OperationalError(
                f"checking the AI BOM failed (exit status {self._child.returncode}): {last}",
                hint="run again with --verbose; report it if it persists",
            ) from None
        if "files" in answer and isinstance(answer["files"], dict):
            files = answer["files"]
            if all(
                isinstance(k, str) and isinstance(v, str) and is_sha256(v) for k, v in files.items()
            ):
                return {k: Sha256(v) for k, v in files.items()}
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict) and error.get("kind") == "VerificationFailed":
            raise VerificationFailed(str(error.get("message")), hint=str(error.get("hint", "")))
        raise OperationalError(
            f"checking the AI BOM failed: {str(error)[:200]}", hint="report it if it persists"
        )

    def __enter__(self) -> AibomCheckProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._child.poll() is None:
            self._child.kill()
        self._child.communicate()


def parse_aibom(data: bytes, *, max_depth: int) -> dict[str, Sha256]:
    """Check AI BOM bytes (depth, UTF-8, CycloneDX 1.6 schema); return the model files it lists.

    Raises:
        VerificationFailed: nested too deeply, not UTF-8 JSON, not valid CycloneDX 1.6, or
            naming no single model with file digests.
    """
    from bitwright.release._aibom_check import AIBOM_FILE, aibom_subjects, validate_aibom

    hint = "the BOM was truncated or altered; take it from the release again"
    load_json(data, source=AIBOM_FILE, hint=hint, what="a CycloneDX document", max_depth=max_depth)
    text = data.decode("utf-8")  # load_json has refused anything that is not UTF-8
    validate_aibom(text)
    return aibom_subjects(text)


def _main() -> None:
    data = sys.stdin.buffer.read()
    try:
        files = parse_aibom(data, max_depth=int(sys.argv[1]))
        answer: dict[str, object] = {"files": files}
    except BitwrightError as exc:
        answer = {"error": {"kind": type(exc).__name__, "message": exc.message, "hint": exc.hint}}
    sys.stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    _main()
