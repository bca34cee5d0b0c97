"""The plugin host: one pluggy PluginManager per app, with built-ins, entry points and
failure isolation.

Built-in plugins are registered by module path through the same hooks as third-party
ones, so the core has no privileged path. Registration hooks are collected here, typed
and de-duplicated, so a clash fails at start-up naming both plugins. Notification hooks
are called one implementation at a time: a plugin that raises is logged with its name
and, after `max_failures` failures in a row, disabled, so routing never stops for it.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import logging
import os
import reprlib
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, TypeVar

import msgspec
import pluggy

from . import controls as _controls
from . import hookspecs
from .specs import (
    ChannelSpec,
    ConfigSpec,
    ControlSpec,
    QueueSelectorSpec,
    ReportSpec,
    RouteSpec,
    ScorerSpec,
    StrategySpec,
)

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "PluginError", "PluginHost", "PluginInfo"]

#: Module paths of the plugins that ship inside omniroute, registered first, in this order.
BUILTIN_PLUGINS: tuple[str, ...] = ("omniroute.router.strategies", "omniroute.router.selectors")
ENTRY_POINT_GROUP = "omniroute"

LOAD_ENV = "OMNIROUTE_LOAD_PLUGINS"
DISABLED_ENV = "OMNIROUTE_DISABLED_PLUGINS"
TRACE_ENV = "OMNIROUTE_TRACE_PLUGINS"

logger = logging.getLogger("omniroute.plugins")

T = TypeVar("T")
_NAME = attrgetter("name")

_repr = reprlib.Repr()  # keyword arguments only from Python 3.12
_repr.maxstring, _repr.maxother, _repr.maxlist, _repr.maxdict = 200, 300, 20, 20


class PluginError(Exception):
    """A plugin could not be loaded, is inconsistent with another, or broke a hook's contract."""


class PluginInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One registered plugin, as `omniroute plugins --json` shows it."""

    name: str
    version: str | None
    distribution: str | None
    builtin: bool
    hooks: list[str]


class PluginHost:
    """The plugins of one app: registration, typed collection, isolated calls.

    Order is deterministic: built-ins in the order given, then entry-point plugins sorted
    by name (or in the order of `OMNIROUTE_LOAD_PLUGINS`), then programmatic ones.
    Registration collectors walk plugins in that order; `notify`, `call_sync` and
    `first_result` use pluggy's call order (last registered first, `tryfirst` and
    `trylast` honoured), so a later plugin can answer before a built-in.
    """

    def __init__(
        self,
        *,
        entry_points: bool = True,
        builtins: Sequence[str] = BUILTIN_PLUGINS,
        max_failures: int = 5,
    ) -> None:
        if max_failures < 1:
            raise ValueError("max_failures must be at least 1")
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self.max_failures = max_failures
        self._builtins: set[str] = set()
        self._failures: dict[str, int] = {}
        self._disabled: dict[str, str] = {}
        self._trace = _truthy(os.environ.get(TRACE_ENV, ""))
        if self._trace:
            self._pm.add_hookcall_monitoring(self._trace_before, self._trace_after)

        for name in _names(os.environ.get(DISABLED_ENV, "")):
            self._pm.set_blocked(name)
            self._disabled[name] = f"blocked by {DISABLED_ENV}"

        for path in builtins:
            if self._pm.is_blocked(path):
                continue
            try:
                module = importlib.import_module(path)
            except ImportError as exc:
                raise PluginError(f"cannot import built-in plugin {path!r}: {exc}") from exc
            self._register(module, path)
            self._builtins.add(path)

        if entry_points:
            self._load_entry_points()
        self._check_pending()

    # ------------------------------------------------------------------ registration

    @property
    def pm(self) -> pluggy.PluginManager:
        """The underlying PluginManager, for the rare caller that needs pluggy itself."""
        return self._pm

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register a plugin object or module; return its name, or None if that name is
        blocked. Raises PluginError for a clash, a bad signature or an unknown hook."""
        registered = self._register(plugin, name)
        if registered is not None:
            try:
                self._check_pending()
            except PluginError:
                self._pm.unregister(name=registered)
                raise
        return registered

    def unregister(self, name: str) -> object | None:
        """Remove a plugin by name; return it, or None if none was registered by that name."""
        self._failures.pop(name, None)
        return self._pm.unregister(name=name)

    def _register(self, plugin: object, name: str | None) -> str | None:
        plugin_name = name or self._pm.get_canonical_name(plugin)
        try:
            return self._pm.register(plugin, name=plugin_name)
        except pluggy.PluginValidationError as exc:
            # pluggy leaves a half-registered plugin behind: take it out again.
            self._pm.unregister(name=plugin_name)
            raise PluginError(_one_line(exc)) from exc
        except ValueError as exc:
            raise PluginError(f"cannot register plugin {plugin_name!r}: {exc}") from exc

    def _load_entry_points(self) -> None:
        """Load `omniroute` entry points one name at a time, so an error names the plugin."""
        wanted = os.environ.get(LOAD_ENV)
        if wanted is None:
            found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
            names, strict = sorted({ep.name for ep in found}), False
        else:
            names, strict = _names(wanted), True
        for name in names:
            if self._pm.is_blocked(name):
                continue
            try:
                loaded = self._pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
            except pluggy.PluginValidationError as exc:
                self._pm.unregister(name=name)
                raise PluginError(_one_line(exc)) from exc
            except Exception as exc:
                raise PluginError(f"cannot load plugin {name!r}: {exc!r}") from exc
            if strict and not loaded and not self._pm.has_plugin(name):
                raise PluginError(
                    f"{LOAD_ENV} names {name!r}, but no installed distribution has an "
                    f"{ENTRY_POINT_GROUP!r} entry point of that name"
                )

    def _check_pending(self) -> None:
        """Fail loudly on a hook no spec declares (a misspelling) or on a hook wrapper."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(self._unknown_hook_message(exc.plugin)) from exc
        for caller in self._callers():
            for impl in caller.get_hookimpls():
                if impl.wrapper or impl.hookwrapper:
                    self._pm.unregister(name=impl.plugin_name)
                    raise PluginError(
                        f"plugin {impl.plugin_name!r}: hook {caller.name!r} is a wrapper; "
                        "omniroute hooks are called one by one and do not support wrappers"
                    )

    def _unknown_hook_message(self, plugin: object) -> str:
        known = [caller.name for caller in self._callers()]
        for name, caller in vars(self._pm.hook).items():
            if name.startswith("_") or caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not impl.optionalhook:
                    close = difflib.get_close_matches(name, known, n=1)
                    hint = f"; did you mean {close[0]!r}?" if close else ""
                    return f"plugin {impl.plugin_name!r} implements unknown hook {name!r}{hint}"
        return f"plugin {self._pm.get_name(plugin)!r} implements an unknown hook"

    def _callers(self) -> list[pluggy.HookCaller]:
        """Hook callers that have a spec: the hooks omniroute declares."""
        return [
            caller
            for name, caller in vars(self._pm.hook).items()
            if not name.startswith("_") and caller.has_spec()
        ]

    # ------------------------------------------------------------------ collectors

    def strategies(self) -> dict[str, StrategySpec]:
        """Every routing strategy, by name."""
        return self._collect("omniroute_strategies", StrategySpec, "strategy", _NAME)

    def queue_selectors(self) -> dict[str, QueueSelectorSpec]:
        """Every queue-selection policy, by name."""
        return self._collect(
            "omniroute_queue_selectors", QueueSelectorSpec, "queue selector", _NAME
        )

    def channels(self) -> dict[str, ChannelSpec]:
        """Every channel adapter, by name."""
        return self._collect("omniroute_channels", ChannelSpec, "channel", _NAME)

    def config_sections(self) -> dict[str, ConfigSpec]:
        """Every `[plugins.<section>]` a plugin reads, by section."""
        return self._collect(
            "omniroute_config_sections", ConfigSpec, "config section", lambda s: s.section
        )

    def web_routes(self) -> list[RouteSpec]:
        """Every extra web route; a path may appear once per method (WS for websockets)."""
        routes: list[RouteSpec] = []
        owners: dict[str, str] = {}
        for plugin, route in self._records("omniroute_web_routes", RouteSpec):
            methods = ["WS"] if route.websocket else [m.upper() for m in route.methods]
            for key in (f"{method} {route.path}" for method in methods):
                if key in owners:
                    raise _duplicate("web route", key, owners[key], plugin)
                owners[key] = plugin
            routes.append(route)
        return routes

    def controls(self) -> list[ControlSpec]:
        """Every control plugins declare for the pages; a name appears once per channel,
        and a malformed control is refused naming its plugin (docs/plugins.md)."""
        records = self._records("omniroute_controls", ControlSpec)
        owners: dict[tuple[str, str], str] = {}
        for plugin, control in records:
            key = (control.channel, control.name)
            if key in owners:
                raise _duplicate("control", "/".join(key), owners[key], plugin)
            owners[key] = plugin
        errors: list[str] = []
        adapters = self.channels() if records else {}
        for plugin, control in records:
            names = (name for channel, name in owners if channel == control.channel)
            errors.extend(_controls.check(plugin, control, names, adapters))
        if errors:
            raise PluginError("; ".join(errors))
        return [control for _, control in records]

    def qa_scorers(self) -> dict[str, ScorerSpec]:
        """Every automatic QA scorer, by name."""
        return self._collect("omniroute_qa_scorers", ScorerSpec, "QA scorer", _NAME)

    def reports(self) -> dict[str, ReportSpec]:
        """Every report, by name."""
        return self._collect("omniroute_reports", ReportSpec, "report", _NAME)

    def _collect(
        self, hook_name: str, kind: type[T], label: str, key: Callable[[T], str]
    ) -> dict[str, T]:
        records: dict[str, T] = {}
        owners: dict[str, str] = {}
        for plugin, record in self._records(hook_name, kind):
            name = key(record)
            if name in records:
                raise _duplicate(label, name, owners[name], plugin)
            records[name] = record
            owners[name] = plugin
        return records

    def _records(self, hook_name: str, kind: type[T]) -> list[tuple[str, T]]:
        """(plugin name, record) for every record of a registration hook, in plugin order."""
        out: list[tuple[str, T]] = []
        for impl in self._impls(hook_name):
            where = f"plugin {impl.plugin_name!r}, hook {hook_name!r}"
            try:
                result = impl.function()
                if inspect.isawaitable(result) or inspect.isasyncgen(result):
                    if inspect.iscoroutine(result):
                        result.close()
                    raise PluginError(f"{where}: registration hooks must be synchronous")
                if result is None:
                    items = []
                elif isinstance(result, kind):
                    items = [result]
                elif isinstance(result, Iterable):
                    items = list(result)
                else:
                    raise PluginError(
                        f"{where} returned {type(result).__name__}; "
                        f"expected {kind.__name__} records (yield them)"
                    )
            except PluginError:
                raise
            except Exception as exc:
                self._trace_call(impl.plugin_name, hook_name, {}, exc=exc)
                raise PluginError(f"{where} raised {exc!r}") from exc
            self._trace_call(impl.plugin_name, hook_name, {}, result=items)
            for item in items:
                if not isinstance(item, kind):
                    raise PluginError(
                        f"{where} gave {type(item).__name__} {item!r}; expected {kind.__name__}"
                    )
                out.append((impl.plugin_name, item))
        return out

    def _impls(self, hook_name: str) -> list[pluggy.HookImpl]:
        """Implementations in registration order (built-ins first), minus disabled plugins."""
        caller = getattr(self._pm.hook, hook_name, None)
        if caller is None or not caller.has_spec():
            raise PluginError(f"no hook named {hook_name!r}")
        return [impl for impl in caller.get_hookimpls() if impl.plugin_name not in self._disabled]

    # ------------------------------------------------------------------ isolated calls

    async def notify(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call every implementation, awaiting awaitables; return the non-None results.

        A plugin that raises is logged and skipped; the others are still called.
        """
        results: list[Any] = []
        for impl in self._call_order(hook_name, kwargs):
            ok, result = await self._call_async(impl, hook_name, kwargs)
            if ok and result is not None:
                results.append(result)
        return results

    def call_sync(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """`notify` for synchronous hooks: an implementation returning an awaitable fails."""
        results: list[Any] = []
        for impl in self._call_order(hook_name, kwargs):
            ok, result = self._call(impl, hook_name, kwargs)
            if ok and result is not None:
                results.append(result)
        return results

    async def first_result(self, hook_name: str, **kwargs: Any) -> Any:
        """Await implementations in turn and return the first non-None answer (or None).

        This replaces `firstresult=True`, which an async implementation would defeat.
        """
        for impl in self._call_order(hook_name, kwargs):
            ok, result = await self._call_async(impl, hook_name, kwargs)
            if ok and result is not None:
                return result
        return None

    async def _call_async(
        self, impl: pluggy.HookImpl, hook_name: str, kwargs: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        if impl.plugin_name in self._disabled:
            return False, None  # disabled by an earlier implementation of this same call
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            result = impl.function(**args)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            self._outcome(impl.plugin_name, hook_name, args, exc=exc)
            return False, None
        self._outcome(impl.plugin_name, hook_name, args, result=result)
        return True, result

    def _call(
        self, impl: pluggy.HookImpl, hook_name: str, kwargs: Mapping[str, Any]
    ) -> tuple[bool, Any]:
        if impl.plugin_name in self._disabled:
            return False, None
        args = {name: kwargs[name] for name in impl.argnames}
        try:
            result = impl.function(**args)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()  # never awaited, on purpose: no RuntimeWarning
                raise PluginError(f"{hook_name} is called synchronously: return no awaitable")
        except Exception as exc:
            self._outcome(impl.plugin_name, hook_name, args, exc=exc)
            return False, None
        self._outcome(impl.plugin_name, hook_name, args, result=result)
        return True, result

    def _call_order(self, hook_name: str, kwargs: Mapping[str, Any]) -> list[pluggy.HookImpl]:
        impls = self._impls(hook_name)
        caller: pluggy.HookCaller = getattr(self._pm.hook, hook_name)
        assert caller.spec is not None
        expected = set(caller.spec.argnames)
        if set(kwargs) != expected:
            raise TypeError(
                f"{hook_name} takes {sorted(expected)}, was called with {sorted(kwargs)}"
            )
        return impls[::-1]

    def _outcome(
        self,
        plugin: str,
        hook_name: str,
        args: Mapping[str, Any],
        *,
        result: Any = None,
        exc: Exception | None = None,
    ) -> None:
        """Trace one call; count failures in a row and disable the plugin at `max_failures`."""
        self._trace_call(plugin, hook_name, args, result=result, exc=exc)
        if exc is None:
            self._failures.pop(plugin, None)
            return
        count = self._failures.get(plugin, 0) + 1
        self._failures[plugin] = count
        logger.error(
            "plugin %r failed in %s (%d of %d in a row): %r",
            plugin,
            hook_name,
            count,
            self.max_failures,
            exc,
            exc_info=exc,
        )
        if count >= self.max_failures:
            reason = f"{count} consecutive failures, the last in {hook_name}: {exc!r}"
            self._pm.set_blocked(plugin)
            self._disabled[plugin] = reason
            del self._failures[plugin]
            logger.error("plugin %r disabled after %s", plugin, reason)

    @property
    def disabled(self) -> dict[str, str]:
        """Plugins blocked by the environment or disabled after failures, with the reason."""
        return dict(self._disabled)

    # ------------------------------------------------------------------ introspection

    def describe(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution and hooks, in registration order."""
        dists = {id(plugin): dist for plugin, dist in self._pm.list_plugin_distinfo()}
        infos: list[PluginInfo] = []
        for name, plugin in self._pm.list_name_plugin():
            if plugin is None:
                continue  # a blocked name
            dist = dists.get(id(plugin))
            callers = self._pm.get_hookcallers(plugin) or []
            infos.append(
                PluginInfo(
                    name=name,
                    version=dist.version if dist is not None else None,
                    distribution=dist.project_name if dist is not None else None,
                    builtin=name in self._builtins,
                    hooks=sorted({caller.name for caller in callers}),
                )
            )
        return infos

    # ------------------------------------------------------------------ tracing

    def _trace_call(
        self,
        plugin: str,
        hook_name: str,
        args: Mapping[str, Any],
        *,
        result: Any = None,
        exc: BaseException | None = None,
    ) -> None:
        if not self._trace:
            return
        outcome = f"raised {exc!r}" if exc is not None else _repr.repr(result)
        _trace_print(f"{plugin}.{hook_name}({_format_args(args)}) -> {outcome}")

    def _trace_before(
        self, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]
    ) -> None:
        _trace_print(f"pm.hook.{hook_name}({_format_args(kwargs)})")

    def _trace_after(
        self,
        outcome: pluggy.Result[Any],
        hook_name: str,
        impls: Sequence[pluggy.HookImpl],
        kwargs: Mapping[str, Any],
    ) -> None:
        if outcome.exception is not None:
            _trace_print(f"pm.hook.{hook_name} -> raised {outcome.exception!r}")
        else:
            _trace_print(f"pm.hook.{hook_name} -> {_repr.repr(outcome.get_result())}")


# ---------------------------------------------------------------------- helpers


def _duplicate(label: str, name: str, first: str, second: str) -> PluginError:
    return PluginError(f"{label} {name!r} is provided by both {first!r} and {second!r}")


def _names(value: str) -> list[str]:
    """A comma-separated env value as a list of names, without blanks or repeats."""
    names = (part.strip() for part in value.split(","))
    return list(dict.fromkeys(name for name in names if name))


def _one_line(exc: Exception) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("", "0", "false", "no", "off")


def _format_args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={_repr.repr(value)}" for key, value in args.items())


def _trace_print(line: str) -> None:
    print(f"omniroute.plugins: {line}", file=sys.stderr, flush=True)
