"""Configuration: admin and customer files (YAML or INI) into validated, frozen values."""

from .errors import ConfigError, ConfigProblem
from .loader import Configuration, read_configuration

__all__ = ["ConfigError", "ConfigProblem", "Configuration", "read_configuration"]
