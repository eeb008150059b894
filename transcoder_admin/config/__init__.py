"""Configuration: admin and customer files (YAML or INI) into validated, frozen values.

Import from the modules (``loader``, ``model``, ``errors``, ``endpoints``…): nothing is
imported here, so a worker that only resolves an endpoint string loads no pydantic.
"""
