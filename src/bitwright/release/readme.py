"""The README of a release: what it contains and how a stranger verifies and rebuilds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bitwright.model import BuildPins, GitPin
from bitwright.pins.source_signature import describe_signature

__all__ = ["release_readme"]


def release_readme(
    pins: BuildPins, subjects: Mapping[str, str], owner_pub: str, links: Sequence[str]
) -> str:
    """Return the Markdown text of ``README.md`` for a release of the build with ``pins``."""
    return "\n".join(
        (
            _heading(pins.git),
            _artifacts(subjects),
            _inputs(pins),
            _verify(pins.git, owner_pub),
            _rebuild(),
            _contents(links),
        )
    )


def _heading(git: GitPin) -> str:
    return f"""# Release of {git.remote_url} at {git.commit}

Built by bitwright: every stage of the DVC pipeline ran sealed and left a signed in-toto link;
the provenance (SLSA v1) names the artifacts below. Rebuildable: {_rebuildable(git)}.
"""


def _rebuildable(git: GitPin) -> str:
    if git.rebuildable:
        return "yes"
    shown = ", ".join(f"`{p}`" for p in git.dirty_paths[:5]) or "paths not recorded"
    more = f" and {len(git.dirty_paths) - 5} more" if len(git.dirty_paths) > 5 else ""
    return (
        f"no: it was built with --allow-dirty from a work tree that differs from the commit "
        f"({shown}{more}), so no one can fetch the exact source"
    )


def _artifacts(subjects: Mapping[str, str]) -> str:
    rows = "\n".join(
        f"| `artifacts/{name}` | `{digest}` |" for name, digest in sorted(subjects.items())
    )
    return f"""## Artifacts
| file | sha256 |
|---|---|
{rows}
"""


def _inputs(pins: BuildPins) -> str:
    """The pinned source, data snapshots and build image, each with where to fetch it."""
    data = (
        "\n".join(
            f"- `{d.path}`: sha256 `{d.sha256}`, DVC md5 `{d.dvc_md5}`, "
            f"from `{d.remote_url or 'n/a'}`"
            for d in pins.data
        )
        or "- none"
    )
    image = (
        f"`{pins.container.image}@{pins.container.digest}`: every stage ran in it "
        f"(enforced: {str(pins.container.enforced).lower()})"
        if pins.container is not None
        else "none: the stages ran sealed on the build host"
    )
    signed = describe_signature(pins.git.signature)
    return f"""## Inputs
- source: `{pins.git.remote_url}` at commit `{pins.git.commit}` ({signed})
- data:
{data}
- build image: {image}
"""


def _verify(git: GitPin, owner_pub: str) -> str:
    return f"""## Verify (no rebuild)
Get the owner's public key from a channel you trust (the copy in `keys/{owner_pub}` is for
convenience: a verifier never trusts keys that travel inside what it checks), then:

```sh
bitwright verify . --key OWNER.pub --source-uri {git.remote_url} --commit {git.commit}
in-toto-verify --layout root.layout --verification-keys OWNER.pub --link-dir links
model_signing verify key artifacts --signature model.sig --public_key OWNER.pub
```

`bitwright verify` checks every file of this directory: each one is listed with its sha256
in `release.intoto.json`, signed by the owner; a file that is changed, missing or added fails.
"""


def _rebuild() -> str:
    return """## Rebuild and compare
```sh
bitwright rebuild . --key OWNER.pub --compare --out rebuild-report
```
fetches the source at the pinned commit and the data from the DVC remote, checks every
digest before anything runs, runs the pipeline sealed, and compares stage by stage and
tensor by tensor.
"""


def _contents(links: Sequence[str]) -> str:
    link_lines = "\n".join(f"- `links/{name}`" for name in links)
    return f"""## Contents
- `provenance.intoto.json`: DSSE-signed in-toto Statement v1 with an SLSA Provenance v1 predicate
- `root.layout`: the owner-signed in-toto layout; links:
{link_lines}
- `aibom.cdx.json`: CycloneDX 1.6 ML-BOM; `model.sig`: OpenSSF model signature over `artifacts/`
- `release.intoto.json`: the release statement, a DSSE-signed in-toto Statement v1 whose
  subjects are every other file of this directory
- `verdicts/` (added later by `bitwright vsa add`): verification summaries of independent
  rebuilders, each signed by its verifier and checked with their keys
"""
