"""Reading configuration files (YAML or INI with the same keys) into validated values."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .endpoints import resolve_endpoint
from .errors import ConfigError, ConfigProblem
from .model import AdminConfig, CustomerConfig, ManagerSection
from .notify import SmtpSettings

CUSTOMER_SUFFIXES = (".yaml", ".yml", ".ini")
_LIST_KEYS = {
    "post-process",
    "notify-done",
    "notify-failed",
    "ignore",
    "allowed-hosts",
    "mime-types",
    "file-types",
}


@dataclass(frozen=True)
class Configuration:
    """The admin config and every customer file, validated together."""

    path: str
    admin: AdminConfig
    customers: dict[str, CustomerConfig]
    customer_files: dict[str, str]

    @property
    def base_dir(self) -> str:
        """The folder relative paths in the admin config are relative to."""
        return os.path.dirname(os.path.abspath(self.path))

    def customers_dir(self) -> str:
        """The absolute folder of the customer files."""
        return resolve_path(self.base_dir, self.admin.admin.customers)

    def roots(self) -> dict[str, str]:
        """Root name → absolute local folder."""
        return {name: resolve_path(self.base_dir, p) for name, p in self.admin.roots.items()}

    def manager_credentials(self) -> str | None:
        """The manager's credentials file, absolute."""
        path = self.admin.manager.credentials
        return resolve_path(self.base_dir, path) if path else None

    def api_tokens_file(self) -> str | None:
        """The API's tokens file, absolute (``None``: the API has no tokens)."""
        path = self.admin.api.tokens_file
        return resolve_path(self.base_dir, path) if path else None

    def smtp_settings(self) -> SmtpSettings:
        """The mail server's settings, with its files' paths absolute."""
        smtp = self.admin.notifications.smtp
        files = {
            key: resolve_path(self.base_dir, path)
            for key in ("password_file", "trust_roots")
            if (path := getattr(smtp, key))
        }
        return smtp.model_copy(update=files)

    def state_dir(self) -> str:
        """The admin's own state (local workers' pid files, secret, job journal)."""
        return os.path.join(self.roots()["temp"], ".transcoder-admin")

    def reports_url(self) -> str:
        """The database URL, with a relative SQLite path made absolute."""
        url = self.admin.reports.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix:
            return prefix + resolve_path(self.base_dir, url[len(prefix) :])
        return url


def resolve_path(base_dir: str, path: str) -> str:
    """An absolute, normalized path; relative ones are taken from ``base_dir``."""
    return os.path.normpath(os.path.join(base_dir, os.path.expanduser(path)))


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        node = target.setdefault(part, {})
        if not isinstance(node, dict):
            node = target[part] = {}
        target = node
    target[parts[-1]] = value


def _ini_value(key: str, raw: str) -> Any:
    """INI values are strings; lists may be written as JSON or as shell-like words."""
    leaf = key.rsplit(".", 1)[-1]
    if leaf in _LIST_KEYS:
        stripped = raw.strip()
        if stripped.startswith("["):
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return raw
        return shlex.split(stripped)
    return raw


def _ini_sections(path: str, text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text, source=path)
    return parser


def parse_admin_ini(path: str, text: str) -> dict[str, Any]:
    """``[section]`` + ``key = value`` → the same nested mapping the YAML form gives."""
    data: dict[str, Any] = {}
    for section in _ini_sections(path, text).values():
        if section.name == "DEFAULT":
            continue
        node = data.setdefault(section.name, {})
        for key, raw in section.items():
            _set_dotted(node, key, _ini_value(key, raw))
    return data


def parse_customer_ini(path: str, text: str) -> dict[str, Any]:
    """``[customer]``, ``[profile:NAME]`` and ``[target:PROFILE:NAME]`` → the YAML mapping."""
    data: dict[str, Any] = {}
    unknown: list[str] = []
    for section in _ini_sections(path, text).values():
        name = section.name
        if name == "DEFAULT":
            continue
        kind, _, rest = name.partition(":")
        if kind == "customer" and not rest:
            node = data
        elif kind == "profile" and rest:
            node = data.setdefault("profiles", {}).setdefault(rest, {})
        elif kind == "target" and ":" in rest:
            profile, _, target = rest.partition(":")
            profile_node = data.setdefault("profiles", {}).setdefault(profile, {})
            node = profile_node.setdefault("targets", {}).setdefault(target, {})
        else:
            unknown.append(name)
            continue
        for key, raw in section.items():
            _set_dotted(node, key, _ini_value(key, raw))
    if unknown:
        raise ConfigError(
            [
                ConfigProblem(
                    path,
                    f"[{name}]",
                    "unknown section; allowed: [customer], [profile:NAME], [target:PROFILE:NAME]",
                )
                for name in unknown
            ]
        )
    return data


def read_mapping(path: str, kind: str) -> dict[str, Any]:
    """Parse one file (YAML or INI by extension) into a mapping, or raise ConfigError."""
    try:
        text = _read_text(path)
    except OSError as e:
        raise ConfigError([ConfigProblem(path, "", f"cannot read: {e.strerror}")]) from e
    if path.endswith(".ini"):
        try:
            if kind == "customer":
                return parse_customer_ini(path, text)
            return parse_admin_ini(path, text)
        except configparser.Error as e:
            message = str(e).replace("\n", " ")
            raise ConfigError([ConfigProblem(path, "", f"not valid INI: {message}")]) from e
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        message = str(e).replace("\n", " ")
        raise ConfigError([ConfigProblem(path, "", f"not valid YAML: {message}")]) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [ConfigProblem(path, "", f"expected a mapping at the top, got {type(data).__name__}")]
        )
    return data


def _allowed_keys(model: type[BaseModel], loc: Iterable[Any]) -> list[str] | None:
    """The keys allowed beside ``loc``'s last element, walking the model along the path."""
    current: Any = model
    for part in list(loc)[:-1]:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next(
                (f for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
            if field is None:
                return None
            current = field.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
        current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted((f.alias or n) for n, f in current.model_fields.items())
    return None


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType):
        if len(args) == 1:
            return args[0]
    return annotation


def _problems(path: str, model: type[BaseModel], error: ValidationError) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        loc = list(item["loc"])
        key = ".".join(str(p) for p in loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, loc)
            message = "unknown key" + (f"; allowed keys: {', '.join(allowed)}" if allowed else "")
            problems.append(ConfigProblem(path, key, message))
        elif kind == "missing":
            problems.append(ConfigProblem(path, key, "required key is missing"))
        else:
            message = item["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            problems.append(ConfigProblem(path, key, message, item.get("input"), True))
    return problems


def validate(path: str, model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate a mapping against a model; every problem is reported with the file."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_problems(path, model, e)) from e


def customer_files(folder: str) -> list[str]:
    """The customer files of a folder, sorted, hidden files left out."""
    try:
        names = sorted(os.listdir(folder))
    except OSError as e:
        raise ConfigError(
            [ConfigProblem(folder, "admin.customers", f"cannot list folder: {e.strerror}")]
        ) from e
    return [
        os.path.join(folder, n)
        for n in names
        if n.endswith(CUSTOMER_SUFFIXES) and not n.startswith(".")
    ]


def load_customers(
    folder: str,
) -> tuple[dict[str, CustomerConfig], dict[str, str], list[ConfigProblem]]:
    """Every valid customer file of ``folder``, and the problems of the others."""
    problems: list[ConfigProblem] = []
    customers: dict[str, CustomerConfig] = {}
    files: dict[str, str] = {}
    for path in customer_files(folder):
        try:
            customer = validate(path, CustomerConfig, read_mapping(path, "customer"))
        except ConfigError as e:
            problems.extend(e.problems)
            continue
        if customer.name in customers:
            problems.append(
                ConfigProblem(
                    path,
                    "name",
                    f"customer name already used by {files[customer.name]}",
                    customer.name,
                    True,
                )
            )
            continue
        customers[customer.name] = customer
        files[customer.name] = path
    return customers, files, problems


def read_configuration(
    path: str, checks: Callable[[Configuration], list[ConfigProblem]] | None = None
) -> Configuration:
    """Read and validate the admin config and all customers; one ConfigError for all.

    ``checks`` adds the problems of a whole configuration that no schema sees (they are
    reported with the others); ``context.load_configuration`` passes the farm's own.
    """
    path = os.path.abspath(path)
    data = read_mapping(path, "admin")
    try:
        admin = _with_absolute_endpoints(validate(path, AdminConfig, data), path)
    except ConfigError as e:
        # Every error at once: the customer files are checked all the same.
        raise ConfigError([*e.problems, *_customer_problems(path, data)]) from None
    base = Configuration(path, admin, {}, {})
    customers, files, problems = load_customers(base.customers_dir())
    config = Configuration(path, admin, customers, files)
    if checks is not None:
        problems += checks(config)
    if problems:
        raise ConfigError(problems)
    return config


def absolute_manager_endpoints(manager: ManagerSection, base_dir: str) -> ManagerSection:
    """Key and certificate files named in ``listen``/``connect``, from ``base_dir``."""
    connect = resolve_endpoint(manager.connect, base_dir) if manager.connect else None
    listen = resolve_endpoint(manager.listen, base_dir)
    return manager.model_copy(update={"listen": listen, "connect": connect})


def _with_absolute_endpoints(admin: AdminConfig, path: str) -> AdminConfig:
    """Files named in the admin's endpoints, taken from the config file's folder."""
    base_dir = os.path.dirname(path)
    api = admin.api.model_copy(update={"listen": resolve_endpoint(admin.api.listen, base_dir)})
    manager = absolute_manager_endpoints(admin.manager, base_dir)
    return admin.model_copy(update={"api": api, "manager": manager})


def _customer_problems(path: str, data: dict[str, Any]) -> list[ConfigProblem]:
    """The customer files' problems when the admin file itself is invalid."""
    section = data.get("admin")
    folder = section.get("customers", "customers") if isinstance(section, dict) else "customers"
    if not isinstance(folder, str):
        return []
    folder = resolve_path(os.path.dirname(path), folder)
    if not os.path.isdir(folder):
        return []  # the admin file's own problems say enough
    return load_customers(folder)[2]
