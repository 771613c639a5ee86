"""The pipeline as bitwright sees it: stages with their command, deps, params and outs."""

from __future__ import annotations

from dataclasses import dataclass

from bitwright.model._json import JsonModel

__all__ = ["ArtifactSpec", "Pipeline", "StageSpec"]


@dataclass(frozen=True)
class StageSpec(JsonModel):
    """One DVC stage of ``dvc.yaml``.

    Attributes:
        name: the stage name (a key of ``stages:``).
        cmd: the command as written in ``dvc.yaml`` (usually ``bitwright stage run NAME -- ...``).
        deps: repository-relative POSIX paths of declared dependencies (files or directories).
        outs: repository-relative POSIX paths of declared outputs (files or directories).
        params: parameter keys the stage reads, as ``(file, key)`` pairs.
        wdir: the stage's working directory relative to the repository root ("." for the root).
        metrics: the outs declared under ``metrics:`` (a subset of ``outs``).
        plots: the outs declared under ``plots:`` (a subset of ``outs``).
    """

    name: str
    cmd: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[tuple[str, str], ...] = ()
    wdir: str = "."
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()

    @property
    def inner_cmd(self) -> str:
        """The command the sealed runner executes (what follows ``--`` in a bitwright wrap)."""
        marker = " -- "
        if self.cmd.startswith("bitwright stage run ") and marker in self.cmd:
            return self.cmd.split(marker, 1)[1]
        return self.cmd

    @property
    def param_files(self) -> tuple[str, ...]:
        """The parameter files the stage reads, each once, in order."""
        return tuple(dict.fromkeys(f for f, _ in self.params))


@dataclass(frozen=True)
class ArtifactSpec(JsonModel):
    """One entry of the ``artifacts:`` section of ``dvc.yaml`` (DVC's model registry).

    Attributes:
        name: the artifact's name (the key).
        path: its repository-relative POSIX path (a file or a directory).
        type: what it is: ``model``, ``data`` or any word the project uses ("" if unsaid).
        desc: its description.
        labels: its labels, in order.
    """

    name: str
    path: str
    type: str = ""
    desc: str = ""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pipeline(JsonModel):
    """All stages of a ``dvc.yaml``, in the file's order, and what it declares beside them.

    Attributes:
        stages: the stages.
        artifacts: the ``artifacts:`` section, in the file's order.
        metrics: the top-level ``metrics:`` paths.
    """

    stages: tuple[StageSpec, ...]
    artifacts: tuple[ArtifactSpec, ...] = ()
    metrics: tuple[str, ...] = ()

    def stage(self, name: str) -> StageSpec:
        """Return the stage called ``name``; raise ``KeyError`` if there is none."""
        for spec in self.stages:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        """The stage names in file order."""
        return tuple(s.name for s in self.stages)

    def producer_of(self, path: str) -> str | None:
        """Return the stage whose outs contain ``path`` (exactly or as a parent directory)."""
        for spec in self.stages:
            for out in spec.outs:
                if path == out or path.startswith(out.rstrip("/") + "/"):
                    return spec.name
        return None

    def upstream(self, name: str) -> tuple[str, ...]:
        """Return the stages whose outputs the stage ``name`` depends on, each once."""
        found: list[str] = []
        for dep in self.stage(name).deps:
            producer = self.producer_of(dep)
            if producer is not None and producer != name and producer not in found:
                found.append(producer)
        return tuple(found)

    def topological(self) -> tuple[str, ...]:
        """Return the stage names ordered so that every stage follows its upstream stages."""
        ordered: list[str] = []
        visiting: set[str] = set()

        def visit(n: str) -> None:
            if n in ordered:
                return
            if n in visiting:
                raise ValueError(f"stage {n!r} is part of a dependency cycle")
            visiting.add(n)
            for up in self.upstream(n):
                visit(up)
            visiting.discard(n)
            ordered.append(n)

        for n in self.names:
            visit(n)
        return tuple(ordered)
