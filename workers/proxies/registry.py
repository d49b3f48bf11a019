"""The proxy registry: each measure module declares its class's policy where it defines it
(cf. zero-cost-nas's `@measure`): `@PROXIES.register("snip", scope="layer", needs=("grads",))`."""

from __future__ import annotations

from zcpipe.errors import InputError, WorkersError
from zcpipe.registry import Registry
from zcpipe.workers.proxies.base import Proxy


class UnknownProxyError(WorkersError, InputError, ValueError):
    """No proxy is registered under that name; the message names the choices."""


# The declared policy, with its defaults: what the engine reads to plan its passes (see base.Proxy).
PROXIES: Registry[type[Proxy]] = Registry(
    "proxy",
    error=UnknownProxyError,
    attrs={"scope": "layer", "pass_name": "data", "needs": (), "version": "1"},
    option="proxies",
)
