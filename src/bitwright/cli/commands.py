"""Imports every command module so that each registers itself on :data:`bitwright.cli.app.app`."""

from bitwright.cli import cmd_build as cmd_build  # noqa: F401
from bitwright.cli import cmd_digest as cmd_digest  # noqa: F401
from bitwright.cli import cmd_keygen as cmd_keygen  # noqa: F401
from bitwright.cli import cmd_params as cmd_params  # noqa: F401
from bitwright.cli import cmd_rebuild as cmd_rebuild  # noqa: F401
from bitwright.cli import cmd_release as cmd_release  # noqa: F401
from bitwright.cli import cmd_stage as cmd_stage  # noqa: F401
from bitwright.cli import cmd_verify as cmd_verify  # noqa: F401
