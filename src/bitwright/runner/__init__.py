"""The runner: runs one pipeline stage sealed, traces its reads, checks its receipts.

A stage runs in the strongest sandbox that works here (:mod:`~bitwright.runner.sandbox`),
or in the build image through podman when a container build asks for it: no network, the
repository read-only with secrets hidden (and, in strict mode, every undeclared file
hidden), a cleared environment (:mod:`~bitwright.runner.environment`).
Python read tracing (:mod:`~bitwright.runner.trace`) names undeclared inputs; receipts
(:mod:`~bitwright.runner.receipt`) confirm the declared determinism settings: the runner's
own for every stage (environment, umask), and each Python process's (torch's settings when
it loaded torch, the parameter files it read, its generators when it used stagekit).
:func:`run_sealed` returns the facts of a run; :func:`judge` decides whether it may be
attested.
"""

from bitwright.runner._podman import image_reference, podman_command, probe_podman
from bitwright.runner.environment import ALLOWED_HOST_VARS, sealed_environment
from bitwright.runner.receipt import RUNNER_UMASK, Expectation, check_receipts, read_receipts
from bitwright.runner.run import judge, log_paths, run_sealed, stage_environment, toolchain_paths
from bitwright.runner.sandbox import (
    BubblewrapSandbox,
    NoSandbox,
    PodmanSandbox,
    Sandbox,
    UnshareSandbox,
    detect_sandbox,
)
from bitwright.runner.trace import undeclared_reads
from bitwright.runner.view import HIDDEN, Bind, RepoView

__all__ = [
    "ALLOWED_HOST_VARS",
    "HIDDEN",
    "Bind",
    "BubblewrapSandbox",
    "Expectation",
    "NoSandbox",
    "PodmanSandbox",
    "RUNNER_UMASK",
    "RepoView",
    "Sandbox",
    "UnshareSandbox",
    "check_receipts",
    "detect_sandbox",
    "image_reference",
    "judge",
    "log_paths",
    "podman_command",
    "probe_podman",
    "read_receipts",
    "run_sealed",
    "sealed_environment",
    "stage_environment",
    "toolchain_paths",
    "undeclared_reads",
]
