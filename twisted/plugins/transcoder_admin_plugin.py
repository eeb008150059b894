"""``twistd transcoder-admin``: the admin as a twistd service (no __init__.py here)."""

from __future__ import annotations

from typing import Any

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


class Options(usage.Options):
    """Options of ``twistd transcoder-admin``."""

    optParameters = [["config", "c", "etc/transcoder-admin.yaml", "admin config file"]]


@implementer(IServiceMaker, IPlugin)
class AdminServiceMaker:
    """Builds the admin service from a config file."""

    tapname = "transcoder-admin"
    description = "Transcoder Admin: a transcoding farm for many customers"
    options = Options

    def makeService(self, options: Any) -> Any:  # noqa: N802 (Twisted API)
        """Load and validate the configuration, then build the admin (not started)."""
        import sys

        from transcoder_admin.admin import create_admin
        from transcoder_admin.cli import settings_problem
        from transcoder_admin.config.errors import ConfigError
        from transcoder_admin.context.checks import load_configuration

        try:
            config = load_configuration(options["config"])
        except ConfigError as e:
            sys.exit(e.render())
        problem = settings_problem(config)
        if problem is not None:
            sys.exit(problem)
        admin = create_admin(config)
        admin.install_sighup()
        return admin


service_maker = AdminServiceMaker()
