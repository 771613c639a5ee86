"""The dependencies check: the provenance's inputs and outputs are those the signed links record.

Every link records the build's pins (``environment.pins``) and the digests of what its stage
read and wrote. The provenance must agree with each of them: the same source commit, the
same data snapshots (sha256 and DVC md5), build image and package lock, the params digest
of the links that read the params file, and as subjects exactly the products of the final
stages (the steps no other step takes products from), so the released artifacts are what the
chain produced. A provenance that records the paths the project declared for release
(``externalParameters.release``) has as subjects exactly the products of any stage inside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from pydantic import ValidationError

from bitwright.attest.dsse import INTOTO_PAYLOAD_TYPE, verify_envelope
from bitwright.attest.link import Link
from bitwright.attest.provenance import external_parameters
from bitwright.attest.statement import (
    BUILD_IMAGE,
    PYTHON_PACKAGES,
    SOURCE,
    ReleaseSelection,
    Statement,
)
from bitwright.errors import VerificationFailed
from bitwright.fileio import load_json
from bitwright.image import check_claimed_image
from bitwright.model import BuildPins
from bitwright.verify.checks_layout import (
    TrustedLayout,
    final_steps,
    functionary_keys,
    link_names,
)
from bitwright.verify.checks_provenance import describe_problems
from bitwright.verify.material import ReleaseReader

__all__ = ["SignedLink", "check_dependencies", "parse_link", "signed_links"]

_HINT = (
    "the provenance and the links describe different builds; the release was assembled "
    "from mismatched parts or altered"
)


@dataclass(frozen=True)
class SignedLink:
    """A link whose signature an authorized functionary of its step made.

    Attributes:
        file: its file name in ``links/``.
        stage: its step.
        payload: the link (in-toto v0.9 JSON).
        pins: the build pins it records.
    """

    file: str
    stage: str
    payload: dict[str, Any]
    pins: BuildPins


def check_dependencies(
    statement: Statement, trusted: TrustedLayout, reader: ReleaseReader
) -> tuple[tuple[SignedLink, ...], str]:
    """Check that the provenance's dependencies and subjects agree with every signed link.

    Returns:
        The signed links, for later steps (a rebuild compares with them).

    Raises:
        VerificationFailed: a link is not signed by a functionary of its step or records
            no pins, or a commit, data snapshot, image, package lock, params digest or final
            product disagrees (the first disagreement is named).
    """
    links = signed_links(trusted, reader)
    if not links:
        raise VerificationFailed("links/ holds no link of a step of the layout", hint=_HINT)
    problems: list[str] = []
    for link in links:
        problems.extend(_pin_problems(statement, link))
        problems.extend(_params_problems(statement, link))
    problems.extend(_product_problems(statement, trusted, links))
    if problems:
        raise VerificationFailed(describe_problems(problems), hint=_HINT)
    image = check_claimed_image(statement, {link.file: link.payload for link in links})
    return links, (
        f"commit, data, image, packages and params agree with {len(links)} link(s); "
        f"subjects are the final stages' products; {image}"
    )


def signed_links(trusted: TrustedLayout, reader: ReleaseReader) -> tuple[SignedLink, ...]:
    """Read every link of a step of the layout, checking its functionary's signature.

    Raises:
        VerificationFailed: a link is not a signed in-toto link of its step, or records no
            readable pins.
        OperationalError: a link cannot be read.
    """
    found: list[SignedLink] = []
    for name in link_names(reader):
        file = PurePosixPath(name).name
        stage = file.rsplit(".", 2)[0]
        keys = functionary_keys(trusted.layout, stage)
        if not keys:
            continue  # not a step of the layout: the byproducts check names it
        payload = _link_payload(reader, name, keys)
        if payload.get("name") != stage:
            raise VerificationFailed(
                f"{name} is the link of stage {str(payload.get('name'))[:80]!r}, not {stage!r}",
                hint=_HINT,
            )
        try:
            pins = BuildPins.from_json(payload["environment"]["pins"])
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationFailed(
                f"{name} records no readable pins ({str(exc)[:200]})", hint=_HINT
            ) from None
        found.append(SignedLink(file, stage, payload, pins))
    return tuple(found)


def _link_payload(reader: ReleaseReader, name: str, keys: list[Any]) -> dict[str, Any]:
    payload = verify_envelope(
        reader.envelope(name), keys, payload_type=INTOTO_PAYLOAD_TYPE, source=name
    )
    return parse_link(payload, source=name, max_depth=reader.limits.json_depth)


def parse_link(payload: bytes, *, source: str, max_depth: int) -> dict[str, Any]:
    """Parse an (authenticated) link payload, depth-checked; return its JSON.

    Raises:
        VerificationFailed: not JSON, nested too deeply, or not an in-toto link.
    """
    hint = "the link is damaged; take the release again"
    document = load_json(payload, source=source, hint=hint, max_depth=max_depth)
    try:
        data: dict[str, Any] = Link.model_validate(document).to_json()
    except ValidationError as exc:
        problem = str(exc).splitlines()[0][:300]
        raise VerificationFailed(f"{source} is not an in-toto link: {problem}", hint=hint) from None
    return data


def _pin_problems(statement: Statement, link: SignedLink) -> list[str]:
    where = f"links/{link.file}"
    pins = link.pins
    problems: list[str] = []
    commit = _digest(statement, SOURCE, "gitCommit")
    if pins.git.commit != commit:
        problems.append(
            f"{where} was built from commit {pins.git.commit[:12]}, "
            f"the provenance names {str(commit)[:12]}"
        )
    image = _digest(statement, BUILD_IMAGE, "sha256")
    if (pins.container.digest.removeprefix("sha256:") if pins.container else None) != image:
        problems.append(f"{where} pins another build image than the provenance")
    if pins.environment.packages_sha256 != _digest(statement, PYTHON_PACKAGES, "sha256"):
        problems.append(f"{where} pins another Python package lock than the provenance")
    claimed = _data_snapshots(statement)
    pinned = {p.path: (p.sha256, p.dvc_md5) for p in pins.data}
    for path in sorted(set(claimed) | set(pinned)):
        if path not in pinned:
            problems.append(f"data snapshot {path} of the provenance is not pinned in {where}")
        elif path not in claimed:
            problems.append(f"data snapshot {path} pinned in {where} is not in the provenance")
        elif claimed[path] != pinned[path]:
            problems.append(
                f"data snapshot {path}: sha256/md5 in {where} differ from the provenance"
            )
    return problems


def _params_problems(statement: Statement, link: SignedLink) -> list[str]:
    params = external_parameters(statement).params
    where = f"links/{link.file}"
    problems: list[str] = []
    material = link.payload["materials"].get(params.path)
    if material is not None and material.get("sha256") != params.sha256:
        problems.append(
            f"{where} read {params.path} with sha256 {str(material.get('sha256'))[:16]}..., "
            f"the provenance's params digest is {params.sha256[:16]}..."
        )
    pinned = link.pins.params_sha256.get(params.path)
    if pinned is not None and pinned != params.sha256:
        problems.append(f"{where} pins {params.path} with another sha256 than the provenance")
    return problems


def _product_problems(
    statement: Statement, trusted: TrustedLayout, links: tuple[SignedLink, ...]
) -> list[str]:
    selection = external_parameters(statement).release
    if selection is not None:
        return _selected_product_problems(statement, links, selection)
    finals = final_steps(trusted.layout)
    produced: dict[str, tuple[str, str]] = {}
    for link in links:
        if link.stage in finals:
            for path, digests in link.payload["products"].items():
                produced[path] = (link.stage, str(digests.get("sha256")))
    subjects = statement.subject_digests()
    problems: list[str] = []
    for name, digest in sorted(subjects.items()):
        if name not in produced:
            problems.append(
                f"subject {name} is no product of the final stage(s) {', '.join(finals)}"
            )
        elif produced[name][1] != digest:
            problems.append(f"subject {name} differs from what stage {produced[name][0]} produced")
    problems.extend(
        f"stage {produced[name][0]} produced {name}, which is not a subject"
        for name in sorted(set(produced) - set(subjects))
    )
    return problems


def _selected_product_problems(
    statement: Statement, links: Sequence[SignedLink], selection: ReleaseSelection
) -> list[str]:
    """Subjects are exactly the products of any stage inside the declared release paths."""

    def inside(path: str, bases: list[str]) -> bool:
        return any(path == b or path.startswith(b.rstrip("/") + "/") for b in bases)

    produced: dict[str, tuple[str, str]] = {}
    for link in links:
        for path, digests in link.payload["products"].items():
            if inside(path, selection.paths) and not inside(path, selection.exclude or []):
                produced[path] = (link.stage, str(digests.get("sha256")))
    subjects = statement.subject_digests()
    problems: list[str] = []
    for name, digest in sorted(subjects.items()):
        if name not in produced:
            problems.append(f"subject {name} is no product of a stage inside the release paths")
        elif produced[name][1] != digest:
            problems.append(f"subject {name} differs from what stage {produced[name][0]} produced")
    problems.extend(
        f"stage {produced[name][0]} produced {name}, inside the release paths, which is not a "
        "subject"
        for name in sorted(set(produced) - set(subjects))
    )
    return problems


def _data_snapshots(statement: Statement) -> Mapping[str, tuple[str, str]]:
    """The data snapshots among the resolved dependencies: name -> (sha256, DVC md5)."""
    snapshots: dict[str, tuple[str, str]] = {}
    for dep in statement.predicate.build_definition.resolved_dependencies or []:
        annotations = dep.annotations or {}
        if dep.name in (None, SOURCE, BUILD_IMAGE, PYTHON_PACKAGES):
            continue
        if annotations.get("pinning") == "tofu":
            continue  # a third-party input: fetched from outside, not a DVC snapshot
        snapshots[dep.name] = ((dep.digest or {}).get("sha256", ""), str(annotations.get("dvcMd5")))
    return snapshots


def _digest(statement: Statement, name: str, algorithm: str) -> str | None:
    dep = statement.dependency(name)
    return None if dep is None else (dep.digest or {}).get(algorithm)
