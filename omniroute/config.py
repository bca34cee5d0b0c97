"""The TOML config file -> typed Structs, naming every mistake at once.

msgspec stops at the first error, which makes fixing a config a slow loop. So each
section, and each queue and agent, is decoded on its own; after an error the part
that failed is dropped and decoding is tried again. Checks that need more than one
Struct (references between queues, opening hours) follow, and checks that need the
installed plugins (strategy names, `[plugins.NAME]` sections) are a separate step so
the file can be read without loading any plugin.

Every error is one line that starts with where it is: `queues[1].sla.seconds:
expected int, got str`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
import tomllib
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from types import EllipsisType
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import msgspec
import msgspec.inspect as mi

from .model import (
    KNOWN_CHANNELS,
    Action,
    ActionKind,
    Agent,
    EscalationStep,
    Hours,
    Queue,
    Routing,
)
from .simulate.scenario import AgentGroup, Simulation, Traffic
from .simulate.scenario import check as check_simulation
from .web.settings import Role, Server

__all__ = [
    "Config",
    "ConfigError",
    "check",
    "check_queue",
    "convert",
    "from_dict",
    "load",
    "loads",
    "validate_with_host",
    "validate_with_plugins",
]

#: One step of a location in the document: a key, a list index, or a dict key msgspec
#: did not name (`[...]`) and that could not be found.
Segment = str | int | EllipsisType
Loc = tuple[Segment, ...]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_ERRORS_PER_ITEM = 50  # a safety bound on the drop-and-retry loop
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SECRET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MSGSPEC_ERROR = re.compile(r"(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?", re.DOTALL)
_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\[(\.\.\.)\]")
_TOML_AT = re.compile(
    r"(?P<msg>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)"
)
_RANGE = re.compile(r"(\d{2}):(\d{2})\s*-\s*(\d{2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A whole `omniroute.toml`.

    `plugins` stays raw here: each `[plugins.NAME]` table is decoded into the Struct its
    plugin registered, by `validate_with_plugins`, once the plugins are loaded.
    `store` is decoded by omniroute.store (`store_config`), which opens the store;
    `simulation` is what `omniroute simulate` reads (omniroute.simulate.scenario).
    """

    queues: list[Queue] = []
    agents: list[Agent] = []
    routing: Routing = Routing()
    plugins: dict[str, dict[str, Any]] = {}
    store: dict[str, Any] | None = None  # reserved
    server: Server = Server()
    simulation: Simulation | None = None
    #: The folder of the file this config was read from, set by `load` (not a key of
    #: the file); None for a config built in code: the current folder.
    folder: str | None = None

    def path(self, value: str) -> Path:
        """A path a config names, as `[store] path` is read: `~` expanded, and relative
        to the config file's folder, wherever omniroute runs from. Plugins' sections use
        it for their files."""
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.folder is None else Path(self.folder) / path


class ConfigError(ValueError):
    """The config is wrong; `errors` holds one line per mistake, each starting with where."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__(self.errors)  # so that pickling rebuilds the same error

    def __str__(self) -> str:
        return "\n".join(self.errors)


class PluginRegistries(Protocol):
    """What config checking needs from a plugin host (omniroute.plugins.PluginHost)."""

    def channels(self) -> Mapping[str, Any]: ...

    def strategies(self) -> Mapping[str, Any]: ...

    def queue_selectors(self) -> Mapping[str, Any]: ...

    def config_sections(self) -> Mapping[str, Any]: ...


# ------------------------------------------------------------------ entry points


def load(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a TOML file (without the checks that need plugins)."""
    source = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: not UTF-8 text (byte {exc.start})"]) from None
    config = loads(text, source=source, env=env)
    config.folder = str(Path(path).resolve().parent)
    return config


def loads(text: str, *, source: str = "<string>", env: Mapping[str, str] | None = None) -> Config:
    """Parse and validate TOML text; `source` names it in syntax errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_error(source, exc)]) from None
    return from_dict(data, env=env)


def from_dict(data: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> Config:
    """Validate an already parsed document (tests and embedders build configs this way).

    `"${NAME}"` values are replaced from `env` (default: the process environment).
    """
    errors: list[str] = []
    if not isinstance(data, Mapping):
        raise ConfigError([f"expected a table at the top level, got {type(data).__name__}"])
    if "folder" in data:  # the file's own folder (Config.folder), never a key of it
        errors.append("folder: unknown section")
        data = {k: v for k, v in data.items() if k != "folder"}
    data = _substitute(data, os.environ if env is None else env, (), errors)
    config = _decode(data, errors)
    if errors:
        raise ConfigError(_in_document_order(errors, list(data)))
    assert config is not None
    return config


def validate_with_plugins(
    config: Config,
    *,
    strategies: Collection[str],
    queue_selectors: Collection[str],
    config_sections: Mapping[str, type],
    channels: Collection[str] | None = None,
) -> dict[str, Any]:
    """Check the names that only the installed plugins know; decode `[plugins.NAME]`.

    `channels` are the channels plugins provide (the built-in names are always known);
    when given, a channel name no one provides is an error wherever it appears.
    Returns the decoded plugin configs by section name: only sections present in the
    file, so a plugin whose section is absent decides its own defaults.
    """
    errors: list[str] = []
    if channels is not None:
        errors.extend(_check_channels(config, {*KNOWN_CHANNELS, *channels}))
    for i, queue in enumerate(config.queues):
        if queue.strategy not in strategies:
            errors.append(
                f'queues[{i}].strategy: unknown strategy "{queue.strategy}"; '
                f"installed: {_listing(strategies)}"
            )
    selection = config.routing.queue_selection
    if selection not in queue_selectors:
        errors.append(
            f'routing.queue_selection: unknown queue selector "{selection}"; '
            f"installed: {_listing(queue_selectors)}"
        )
    decoded: dict[str, Any] = {}
    for name, section in config.plugins.items():
        loc: Loc = ("plugins", name)
        section_type = config_sections.get(name)
        if section_type is None:
            errors.append(
                f"{_render(loc)}: no installed plugin reads this section; "
                f"installed sections: {_listing(config_sections)}"
                f"{_hint(name, config_sections)}"
            )
            continue
        value = _convert(section, section_type, loc, errors)
        if value is not None:
            decoded[name] = value
    if errors:
        raise ConfigError(errors)
    return decoded


def check_queue(queue: Queue, queues: Collection[str], strategies: Collection[str]) -> list[str]:
    """What is wrong with one queue beside the others named `queues` (a queue sent to the
    admin API): the checks the config file gets, paths relative to the queue."""
    errors = [e.removeprefix(".") for e in _check_queue("", queue, {*queues, queue.name})]
    if queue.strategy not in strategies:
        errors.append(
            f'strategy: unknown strategy "{queue.strategy}"; installed: {_listing(strategies)}'
            f"{_hint(queue.strategy, strategies)}"
        )
    return errors


def validate_with_host(config: Config, host: PluginRegistries) -> dict[str, Any]:
    """`validate_with_plugins` with the registries of a plugin host, then each section's
    own cross-checks (`ConfigSpec.check`: queues it names, variables it needs)."""
    sections = host.config_sections()
    decoded = validate_with_plugins(
        config,
        strategies=host.strategies(),
        queue_selectors=host.queue_selectors(),
        config_sections=_section_types(sections),
        channels=host.channels(),
    )
    errors: list[str] = []
    for name, settings in decoded.items():
        spec = sections[name]  # a ConfigSpec, or a bare type (no cross-checks)
        check = None if isinstance(spec, type) else getattr(spec, "check", None)
        if check is not None:
            errors.extend(check(settings, config))
    if errors:
        raise ConfigError(errors)
    return decoded


def _check_channels(config: Config, known: Collection[str]) -> list[str]:
    """Channel names in queues and agents must be ones omniroute or a plugin knows: a
    typo would otherwise quietly keep a queue or an agent away from a channel."""
    listing = _listing(known)

    def unknown(where: str, name: str) -> str:
        return f'{where}: unknown channel "{name}"' + (_hint(name, known) or f"; known: {listing}")

    errors = []
    for i, queue in enumerate(config.queues):
        for j, name in enumerate(queue.channels or ()):
            if name not in known:
                errors.append(unknown(f"queues[{i}].channels[{j}]", name))
    for i, agent in enumerate(config.agents):
        for name in agent.capacity:
            if name not in known:
                errors.append(unknown(f"agents[{i}].capacity.{_key(name)}", name))
        for j, name in enumerate(agent.exclusive):
            if name not in known:
                errors.append(unknown(f"agents[{i}].exclusive[{j}]", name))
    return errors


def check(path: str | os.PathLike[str], host: PluginRegistries) -> list[str]:
    """Every error of the file at `path`, plugin checks included; empty means it is fine."""
    from .store import store_config  # the store package reads its own section

    try:
        config = load(path)
        errors = []
        for validate in (
            lambda: validate_with_host(config, host),
            lambda: store_config(config.store),
        ):
            try:
                validate()
            except ConfigError as exc:
                errors.extend(exc.errors)
        if not errors:
            return []
    except ConfigError as exc:
        errors = list(exc.errors)
    # The file did not decode: still name the strategies no plugin provides.
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return errors
    strategies = host.strategies()
    queues = raw.get("queues")
    for i, queue in enumerate(queues if isinstance(queues, list) else []):
        name = queue.get("strategy") if isinstance(queue, dict) else None
        if isinstance(name, str) and name not in strategies:
            line = (
                f'queues[{i}].strategy: unknown strategy "{name}"; '
                f"installed: {_listing(strategies)}"
            )
            if line not in errors:
                errors.append(line)
    return _in_document_order(errors, [*Config.__struct_fields__])


def _section_types(sections: Mapping[str, Any]) -> dict[str, type]:
    """Accept either types or ConfigSpec-like records (with `.type`) as values."""
    return {name: v if isinstance(v, type) else v.type for name, v in sections.items()}


# ------------------------------------------------------------------ TOML and secrets


def _in_document_order(errors: list[str], sections: list[str]) -> list[str]:
    """Group errors by section and by queue or agent, in the file's order (stable)."""

    def key(line: str) -> tuple[int, int]:
        m = re.match(r"([A-Za-z0-9_-]+)(?:\[(\d+)\])?", line)
        if m is None or m[1] not in sections:
            return len(sections), 0
        return sections.index(m[1]), int(m[2] or -1)

    return sorted(errors, key=key)


def _toml_error(source: str, exc: tomllib.TOMLDecodeError) -> str:
    text = str(exc)
    m = _TOML_AT.fullmatch(text)
    if m is None:
        return f"{source}: {_lower_first(text)}"
    where = f"line {m['line']}, column {m['col']}" if m["line"] else "end of file"
    return f"{source}: {where}: {_lower_first(m['msg'])}"


def _substitute(value: Any, env: Mapping[str, str], loc: Loc, errors: list[str]) -> Any:
    """Replace every string that is exactly `${NAME}` by the environment variable NAME."""
    if isinstance(value, str):
        m = _SECRET.fullmatch(value)
        if m is None:
            return value
        name = m[1]
        if name not in env:
            errors.append(f"{_render(loc)}: environment variable {name} is not set")
            return value
        return env[name]
    if isinstance(value, Mapping):
        return {k: _substitute(v, env, (*loc, k), errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, (*loc, i), errors) for i, v in enumerate(value)]
    return value


# ------------------------------------------------------------------ structure


_SECTIONS: dict[str, Any] = {
    "routing": Routing,
    "plugins": dict[str, dict[str, Any]],
    "store": dict[str, Any],
    "server": Server,
    "simulation": Simulation,
}
_LISTS: dict[str, type] = {"queues": Queue, "agents": Agent}


def _decode(data: Mapping[str, Any], errors: list[str]) -> Config | None:
    """Decode section by section and item by item, then run the cross checks."""
    known = sorted(f for f in Config.__struct_fields__ if f != "folder")
    fields: dict[str, Any] = {}
    items: dict[str, list[tuple[int, Any]]] = {"queues": [], "agents": []}
    for key, value in data.items():
        if key in _LISTS:
            items[key] = _convert_list(key, value, _LISTS[key], errors)
            fields[key] = [item for _, item in items[key]]
        elif key in _SECTIONS:
            if value is None and key != "routing":
                continue
            convert = _convert_simulation if key == "simulation" else _convert
            section = convert(value, _SECTIONS[key], (key,), errors)
            if section is not None:
                fields[key] = section
        else:
            hint = _hint(key, known) or f"; known sections: {', '.join(known)}"
            errors.append(f"{_render((key,))}: unknown section{hint}")
    raw_queues = data.get("queues")
    raw_agents = data.get("agents")
    queue_names = _raw_names(raw_queues, "name")
    errors.extend(_check_unique(queue_names, "queues", "name", "queue"))
    errors.extend(_check_unique(_raw_names(raw_agents, "id"), "agents", "id", "agent"))
    names = {name for _, name in queue_names}
    for i, queue in items["queues"]:
        errors.extend(_check_queue(f"queues[{i}]", queue, names))
    by_name = {queue.name: queue for _, queue in items["queues"]}
    for i, agent in items["agents"]:
        errors.extend(_check_agent(f"agents[{i}]", agent, names, by_name))
    if isinstance(fields.get("server"), Server):
        agent_ids = {name for _, name in _raw_names(raw_agents, "id")}
        errors.extend(_check_users(fields["server"], agent_ids))
    if isinstance(fields.get("simulation"), Simulation):
        channels = {queue.name: queue.channels for _, queue in items["queues"]}
        agent_ids = {name for _, name in _raw_names(raw_agents, "id")}
        errors.extend(check_simulation(fields["simulation"], channels, agent_ids))
    if errors:
        return None
    return Config(**fields)


def _convert_simulation(value: Any, tp: Any, prefix: Loc, errors: list[str]) -> Any | None:
    """`[simulation]` with each agent group and traffic stream decoded on its own, so
    one bad entry does not hide the errors of the next."""
    if not isinstance(value, Mapping):
        return _convert(value, tp, prefix, errors)
    before = len(errors)
    lists: dict[str, list[Any]] = {}
    for key, item_type in (("agents", AgentGroup), ("traffic", Traffic)):
        raw = value.get(key)
        if isinstance(raw, list):
            lists[key] = [
                _convert(element, item_type, (*prefix, key, i), errors)
                for i, element in enumerate(raw)
            ]
    rest = {k: v for k, v in value.items() if k not in lists}
    section = _convert(rest, tp, prefix, errors)
    if section is None or len(errors) > before:
        return None
    return msgspec.structs.replace(section, **lists)


def _convert_list(
    key: str, value: Any, item_type: type, errors: list[str]
) -> list[tuple[int, Any]]:
    """Decode each element on its own so one bad queue does not hide the next one."""
    if not isinstance(value, list):
        before = len(errors)
        _convert(value, list[item_type], (key,), errors)  # type: ignore[valid-type]
        if len(errors) > before and isinstance(value, dict):
            errors[-1] += f"; write [[{key}]] (double brackets) for each one"
        return []
    out = []
    for i, element in enumerate(value):
        item = _convert(element, item_type, (key, i), errors, partial=True)
        if item is not None:
            out.append((i, item))
    return out


def convert(data: Any, tp: Any) -> Any:
    """`data` (plain JSON-like values) as type `tp`, or ConfigError naming every mistake
    with its path, as config errors do (the web API decodes request bodies with it)."""
    errors: list[str] = []
    value = _convert(data, tp, (), errors)
    if errors:  # an error about the whole value has no path: drop the empty prefix
        raise ConfigError(e.removeprefix(": ") for e in errors)
    return value


def _convert(
    data: Any, tp: Any, prefix: Loc, errors: list[str], *, partial: bool = False
) -> Any | None:
    """msgspec.convert, but naming every error: after one, drop what failed and retry.

    Returns None if anything was wrong, unless `partial`: then the value decoded without
    the failed parts (they take their defaults), so the cross checks can still look at
    the rest. A required field we dropped is not reported missing.
    """
    work = _copy(data)
    dropped: set[Loc] = set()
    found = False
    for _ in range(_MAX_ERRORS_PER_ITEM):
        try:
            value = msgspec.convert(work, tp)
        except msgspec.ValidationError as exc:
            message, loc = _parse_error(str(exc))
            loc = _resolve_keys(work, tp, str(exc), loc)
            target: Loc = loc
            unknown = re.fullmatch(r"Object contains unknown field `(.+)`", message)
            missing = re.fullmatch(r"Object missing required field `(.+)`", message)
            if unknown:
                target = (*loc, unknown[1])
                names = _field_names(tp, loc)
                errors.append(
                    f'{_render(prefix + loc)}: unknown field "{unknown[1]}"'
                    f"{_hint(unknown[1], names)}"
                )
            elif missing:
                if (*loc, missing[1]) not in dropped:
                    errors.append(f'{_render(prefix + loc)}: missing required field "{missing[1]}"')
            else:
                errors.append(f"{_render(prefix + loc)}: {_rewrite(message, tp, loc)}")
            found = True
            if not _drop(work, target, dropped):
                return None
        else:
            return value if partial or not found else None
    return None


def _copy(value: Any) -> Any:
    """A copy of the containers (the leaves are immutable), so dropping keys is safe."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _drop(work: Any, target: Loc, dropped: set[Loc]) -> bool:
    """Remove the nearest dict key at or above `target`; False if there is none."""
    while target and not isinstance(target[-1], str):
        target = target[:-1]
    if not target:
        return False
    parent = _follow(work, target[:-1])
    if not isinstance(parent, dict) or target[-1] not in parent:
        return False
    del parent[target[-1]]
    dropped.add(target)
    return True


def _follow(work: Any, loc: Loc) -> Any:
    for seg in loc:
        if isinstance(seg, EllipsisType):
            return None
        try:
            work = work[seg]
        except (KeyError, IndexError, TypeError):
            return None
    return work


def _parse_error(text: str) -> tuple[str, Loc]:
    """ "Expected `int`, got `str` - at `$.sla.seconds`" -> (message, ("sla", "seconds"))."""
    m = _MSGSPEC_ERROR.fullmatch(text)
    assert m is not None  # the pattern matches any text
    loc: list[Segment] = []
    for name, index, _any in _PATH_TOKEN.findall(m["path"] or ""):
        loc.append(name if name else int(index) if index else ...)
    return m["msg"], tuple(loc)


def _resolve_keys(work: Any, tp: Any, text: str, loc: Loc) -> Loc:
    """msgspec says `skills[...]`; find which key it was by decoding one key at a time."""
    if ... not in loc:
        return loc
    at = loc.index(...)
    container = _follow(work, loc[:at])
    if not isinstance(container, dict):
        return loc
    items = list(container.items())
    culprit: Any = ...
    try:
        for key, value in items:
            container.clear()
            container[key] = value
            try:
                msgspec.convert(work, tp)
            except msgspec.ValidationError as exc:
                if str(exc) == text:
                    culprit = key
                    break
    finally:
        container.clear()
        container.update(items)
    if culprit is ...:
        return loc
    return _resolve_keys(work, tp, text, (*loc[:at], culprit, *loc[at + 1 :]))


def _rewrite(message: str, tp: Any, loc: Loc) -> str:
    """msgspec's words, lower-cased at the start and without backticks; enums list values."""
    enum = re.fullmatch(r"Invalid enum value (.+)", message)
    info = _type_at(tp, loc)
    if enum and isinstance(info, mi.EnumType):
        value = re.sub(r"^'(.*)'$", r'"\1"', enum[1])
        allowed = ", ".join(f'"{m.value}"' for m in info.cls)
        return f"invalid value {value}; expected one of {allowed}"
    text = _lower_first(message.replace("`", ""))
    if re.fullmatch(r"expected str, got (date|time|datetime)", text):
        text += "; write it in quotes"
    return text


def _type_at(tp: Any, loc: Loc) -> mi.Type | None:
    """The msgspec type info at `loc` inside `tp`, to name fields and enum values."""
    try:
        info: mi.Type | None = mi.type_info(tp)
    except (TypeError, ValueError):
        return None
    for seg in loc:
        info = _plain(info)
        if isinstance(info, mi.StructType) and isinstance(seg, str):
            info = next((f.type for f in info.fields if f.encode_name == seg), None)
        elif isinstance(info, mi.ListType | mi.SetType | mi.VarTupleType) and isinstance(seg, int):
            info = info.item_type
        elif isinstance(info, mi.DictType) and not isinstance(seg, int):
            info = info.value_type
        else:
            return None
    return _plain(info)


def _plain(info: mi.Type | None) -> mi.Type | None:
    """Strip Annotated metadata and `| None`."""
    while True:
        if isinstance(info, mi.Metadata):
            info = info.type
        elif isinstance(info, mi.UnionType):
            rest = [t for t in info.types if not isinstance(t, mi.NoneType)]
            if len(rest) != 1:
                return info
            info = rest[0]
        else:
            return info


def _field_names(tp: Any, loc: Loc) -> list[str]:
    info = _type_at(tp, loc)
    return [f.encode_name for f in info.fields] if isinstance(info, mi.StructType) else []


# ------------------------------------------------------------------ cross checks


def _raw_names(raw: Any, key: str) -> list[tuple[int, str]]:
    """(index, name) of every list element with a string `key`, decodable or not."""
    if not isinstance(raw, list):
        return []
    return [
        (i, item[key])
        for i, item in enumerate(raw)
        if isinstance(item, Mapping) and isinstance(item.get(key), str)
    ]


def _check_unique(names: list[tuple[int, str]], section: str, key: str, noun: str) -> list[str]:
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, name in names:
        where = f"{section}[{i}].{key}"
        if not name.strip():
            errors.append(f"{where}: must not be empty")
        elif name in seen:
            errors.append(f'{where}: duplicate {noun} "{name}" (also {section}[{seen[name]}])')
        else:
            seen[name] = i
    return errors


def _check_queue(where: str, queue: Queue, names: Collection[str]) -> list[str]:
    errors: list[str] = []
    if queue.channels is not None:
        if not queue.channels:
            errors.append(
                f"{where}.channels: an empty list accepts no channel; "
                "leave the key out to accept every channel"
            )
        errors.extend(
            f"{where}.channels[{j}]: must not be empty"
            for j, channel in enumerate(queue.channels)
            if not channel.strip()
        )
    errors.extend(_check_escalation(where, queue, names))
    errors.extend(_check_action(f"{where}.on_max_wait", queue.on_max_wait, queue.name, names))
    if queue.hours is not None:
        errors.extend(_check_hours(f"{where}.hours", queue.hours, queue.name, names))
    return errors


def _does_something(step: EscalationStep) -> bool:
    return (
        step.relax is not None
        or step.fallback is not None
        or step.priority is not None
        or step.overflow is not None
        or step.callback
        or step.notify
    )


def _check_escalation(where: str, queue: Queue, names: Collection[str]) -> list[str]:
    errors: list[str] = []
    previous: float | None = None
    for j, step in enumerate(queue.escalation):
        at = f"{where}.escalation[{j}]"
        if previous is not None and step.after <= previous:
            errors.append(
                f"{at}.after: {step.after:g} is not after the previous step ({previous:g}); "
                "steps must be in increasing order"
            )
        previous = step.after
        if not _does_something(step):
            errors.append(
                f"{at}: the step does nothing; set relax, fallback, priority, "
                "overflow, callback or notify"
            )
        if step.overflow is not None:
            errors.extend(_check_ref(f"{at}.overflow", step.overflow, queue.name, names))
    return errors


def _check_action(where: str, action: Action, own: str, names: Collection[str]) -> list[str]:
    if action.queue is not None:
        return _check_ref(f"{where}.queue", action.queue, own, names)
    if action.action is ActionKind.OVERFLOW:
        return [f'{where}: action "overflow" needs a queue (queue = "...")']
    return []


def _check_ref(where: str, target: str, own: str, names: Collection[str]) -> list[str]:
    """A reference to another queue must name one that exists, and not the queue itself."""
    if target == own:
        return [f'{where}: "{target}" is this queue itself; name another queue']
    if target not in names:
        return [f'{where}: unknown queue "{target}"{_hint(target, names)}']
    return []


def _check_agent(
    where: str, agent: Agent, names: Collection[str], queues: Mapping[str, Queue]
) -> list[str]:
    """An agent's queues exist, and the agent has the skills each of them requires (a
    queue they are listed on but can never serve is a mistake, not a setting)."""
    errors = []
    for j, name in enumerate(agent.queues or ()):
        if name not in names:
            errors.append(f'{where}.queues[{j}]: unknown queue "{name}"{_hint(name, names)}')
            continue
        queue = queues.get(name)
        if queue is None:
            continue  # the queue itself is wrong: its own error says so
        missing = [
            f"{skill} {level}"
            for skill, level in queue.skills.items()
            if agent.skills.get(skill, 0) < level
        ]
        if missing:
            errors.append(
                f'{where}.queues[{j}]: queue "{name}" requires {", ".join(missing)}, which '
                f'agent "{agent.id}" lacks, so they would never be offered its work'
            )
    return errors


def _check_users(server: Server, agent_ids: Collection[str]) -> list[str]:
    """User ids are unique; an agent user is an agent of the config; hashes look right."""
    raw = [(i, user.id) for i, user in enumerate(server.users)]
    errors = _check_unique(raw, "server.users", "id", "user")
    for i, user in enumerate(server.users):
        where = f"server.users[{i}]"
        if user.role is Role.AGENT and user.id not in agent_ids:
            errors.append(
                f'{where}.id: no agent "{user.id}"{_hint(user.id, agent_ids)}; a user with '
                "role agent logs in as the [[agents]] entry of the same id"
            )
        if user.password_hash is not None and not user.password_hash.startswith("scrypt$"):
            errors.append(
                f"{where}.password_hash: not a hash from `omniroute passwd` "
                "(it starts with scrypt$); never put the password itself here"
            )
        for j, token in enumerate(user.token_hashes):
            if not token.startswith("sha256$"):
                errors.append(
                    f"{where}.token_hashes[{j}]: not a hash from `omniroute passwd --token` "
                    "(it starts with sha256$)"
                )
        if user.password_hash is None and not user.token_hashes:
            errors.append(f"{where}: set password_hash or token_hashes, or the user cannot log in")
    return errors


def _check_hours(where: str, hours: Hours, own: str, names: Collection[str]) -> list[str]:
    errors: list[str] = []
    if not _valid_zone(hours.timezone):
        hint = _hint(hours.timezone, _zones())
        errors.append(f'{where}.timezone: unknown time zone "{hours.timezone}"{hint}')
    if not any(hours.weekly.values()):
        errors.append(
            f"{where}.weekly: no opening hours, so the queue never opens; "
            'add a range such as mon = ["09:00-17:00"]'
        )
    for day, ranges in hours.weekly.items():
        at = f"{where}.weekly.{_key(day)}"
        if day not in DAYS:
            errors.append(f"{at}: unknown day; days are {', '.join(DAYS)}")
        errors.extend(_check_ranges(at, ranges))
    for j, text in enumerate(hours.holidays):
        if not _valid_date(text):
            errors.append(f'{where}.holidays[{j}]: invalid date "{text}"; expected YYYY-MM-DD')
    errors.extend(_check_action(f"{where}.closed", hours.closed, own, names))
    return errors


def _check_ranges(where: str, ranges: list[str]) -> list[str]:
    errors: list[str] = []
    parsed: list[tuple[int, int, int]] = []
    for j, text in enumerate(ranges):
        span = _parse_range(text)
        if span is None:
            errors.append(
                f'{where}[{j}]: invalid range "{text}"; expected HH:MM-HH:MM such as "09:00-17:30"'
            )
        elif span[0] >= span[1]:
            errors.append(f'{where}[{j}]: range "{text}" does not end after it starts')
        else:
            parsed.append((*span, j))
    parsed.sort()
    reach, last = -1, -1  # the latest end so far, and the range it belongs to
    for start, end, j in parsed:
        if start < reach:
            errors.append(f'{where}[{j}]: range "{ranges[j]}" overlaps "{ranges[last]}"')
        if end > reach:
            reach, last = end, j
    return errors


def _parse_range(text: str) -> tuple[int, int] | None:
    """ "09:00-17:30" -> minutes from midnight; "24:00" may end a day."""
    m = _RANGE.fullmatch(text.strip())
    if m is None:
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
        return None
    return h1 * 60 + m1, h2 * 60 + m2


def _valid_date(text: str) -> bool:
    if not _DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _valid_zone(key: str) -> bool:
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _zones() -> set[str]:
    try:
        return available_timezones()
    except OSError:  # pragma: no cover - unreadable tz database
        return set()


# ------------------------------------------------------------------ wording


def _render(loc: Loc) -> str:
    """("queues", 1, "sla", "seconds") -> "queues[1].sla.seconds"."""
    out = ""
    for seg in loc:
        if isinstance(seg, EllipsisType):
            out += "[...]"
        elif isinstance(seg, int):
            out += f"[{seg}]"
        else:
            out = f"{out}.{_key(seg)}" if out else _key(seg)
    return out


def _key(key: str) -> str:
    """A key as TOML would write it: bare if it can be, else quoted."""
    return key if _BARE_KEY.fullmatch(key) else msgspec.json.encode(key).decode()


def _hint(word: str, choices: Iterable[str]) -> str:
    """'; did you mean "strategy"?' when a choice is close, else ""."""
    choices = list(choices)
    folded = {c.casefold(): c for c in choices}
    close = difflib.get_close_matches(word, choices, n=1) or (
        [folded[word.casefold()]] if word.casefold() in folded else []
    )
    return f'; did you mean "{close[0]}"?' if close else ""


def _listing(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
