"""Config loading: every error named, with its place, in one run."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest

from omniroute.config import (
    Config,
    ConfigError,
    check,
    from_dict,
    load,
    loads,
    validate_with_host,
    validate_with_plugins,
)
from omniroute.model import ActionKind, Queue, Routing
from omniroute.web.settings import Server

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "omniroute.toml"
STRATEGIES = ["best-skill", "fewest-answered", "least-talk-time", "longest-idle", "round-robin"]
SELECTORS = ["oldest-first", "priority-sla-wait"]


class TelegramConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: str
    poll_seconds: float = 1.0


class SectionRecord(msgspec.Struct, frozen=True):
    """Shaped like omniroute.specs.ConfigSpec: the host may return these, not types."""

    section: str
    type: type


class FakeHost:
    """The registries config checking needs, without loading any plugin."""

    def __init__(self, sections: dict[str, Any] | None = None) -> None:
        self.sections = {"telegram": TelegramConfig} if sections is None else sections

    def channels(self) -> dict[str, object]:
        return {"sms": object()}  # a channel a plugin provides

    def strategies(self) -> dict[str, object]:
        return {name: object() for name in STRATEGIES}

    def queue_selectors(self) -> dict[str, object]:
        return {name: object() for name in SELECTORS}

    def config_sections(self) -> dict[str, Any]:
        return self.sections


def errors_of(text: str, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        loads(textwrap.dedent(text), **kwargs)
    return info.value.errors


def plugin_errors(config: Config, sections: dict[str, type] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_with_plugins(
            config,
            strategies=STRATEGIES,
            queue_selectors=SELECTORS,
            config_sections={"telegram": TelegramConfig} if sections is None else sections,
        )
    return info.value.errors


# ------------------------------------------------------------------ valid files


def test_empty_document_gives_defaults() -> None:
    config = loads("")
    assert config == Config()
    assert config.routing == Routing()
    assert config.plugins == {}
    assert config.store is None and config.simulation is None
    assert config.server == Server()


def test_example_file_is_valid() -> None:
    config = load(EXAMPLE)
    names = [q.name for q in config.queues]
    assert names == ["billing", "support", "sales", "general"]
    assert 6 <= len(config.agents) <= 8
    assert validate_with_host(config, FakeHost()) == {}
    assert check(EXAMPLE, FakeHost()) == []


def test_example_file_uses_every_escalation_step_kind_and_hours() -> None:
    config = load(EXAMPLE)
    steps = [step for q in config.queues for step in q.escalation]
    assert any(s.relax for s in steps)
    assert any(s.fallback for s in steps)
    assert any(s.priority is not None for s in steps)
    assert any(s.overflow for s in steps)
    assert any(s.callback for s in steps)
    assert any(s.notify for s in steps)
    assert any(q.hours is not None for q in config.queues)
    assert any(q.max_wait is not None for q in config.queues)


def test_full_document_decodes_into_structs() -> None:
    config = loads(
        textwrap.dedent(
            """
            [routing]
            queue_selection = "oldest-first"
            seed = 7

            [[queues]]
            name = "billing"
            channels = ["voice", "email"]
            skills = { billing = 3 }
            strategy = "best-skill"
            sla = { target = 0.9, seconds = 15 }
            max_wait = 300
            on_max_wait = { action = "overflow", queue = "general" }
            escalation = [
                { after = 10, relax = 1 },
                { after = 20, overflow = "general", notify = true },
            ]
            [queues.hours]
            timezone = "Europe/Paris"
            weekly = { mon = ["09:00-12:00", "13:00-24:00"] }
            holidays = ["2025-12-25"]
            closed = { action = "voicemail" }

            [[queues]]
            name = "general"

            [[agents]]
            id = "ann"
            skills = { billing = 5 }
            capacity = { voice = 1 }
            queues = ["billing"]

            [plugins.telegram]
            token = "abc"

            [store]
            url = "sqlite:///x.db"
            """
        )
    )
    billing = config.queues[0]
    assert isinstance(billing, Queue)
    assert billing.sla.seconds == 15
    assert billing.on_max_wait.action is ActionKind.OVERFLOW
    assert billing.hours is not None and billing.hours.timezone == "Europe/Paris"
    assert config.agents[0].capacity == {"voice": 1}
    assert config.routing.seed == 7
    assert config.plugins == {"telegram": {"token": "abc"}}
    assert config.store == {"url": "sqlite:///x.db"}


def test_from_dict_accepts_a_parsed_document() -> None:
    config = from_dict({"queues": [{"name": "a"}], "agents": [{"id": "x"}]})
    assert [q.name for q in config.queues] == ["a"]
    assert config.agents[0].id == "x"


# ------------------------------------------------------------------ structural errors


def test_type_error_reads_path_first() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        [[queues]]
        name = "b"
        sla = { seconds = "20" }
        """
    )
    assert errors == ["queues[1].sla.seconds: expected int, got str"]


def test_error_str_lists_every_error_one_per_line() -> None:
    with pytest.raises(ConfigError) as info:
        loads("[[queues]]\nname = 1\n[[agents]]\nid = 2\n")
    assert str(info.value) == (
        "queues[0].name: expected str, got int\nagents[0].id: expected str, got int"
    )
    assert isinstance(info.value, ValueError)


def test_unknown_field_with_hint() -> None:
    errors = errors_of('[[queues]]\nname = "a"\nstratgy = "longest-idle"\n')
    assert errors == ['queues[0]: unknown field "stratgy"; did you mean "strategy"?']


def test_unknown_field_without_close_match_has_no_hint() -> None:
    errors = errors_of('[[queues]]\nname = "a"\ncolour = "blue"\n')
    assert errors == ['queues[0]: unknown field "colour"']


def test_unknown_nested_field() -> None:
    errors = errors_of('[[queues]]\nname = "a"\nsla = { secs = 20 }\n')
    assert errors == ['queues[0].sla: unknown field "secs"; did you mean "seconds"?']


def test_unknown_section() -> None:
    errors = errors_of('[[queue]]\nname = "a"\n[colours]\nx = 1\n')
    assert errors[0] == 'queue: unknown section; did you mean "queues"?'
    assert errors[1].startswith("colours: unknown section; known sections: agents, plugins")


def test_queues_written_as_a_table_gets_a_hint() -> None:
    errors = errors_of('[queues]\nname = "a"\n')
    assert errors == [
        "queues: expected array, got object; write [[queues]] (double brackets) for each one"
    ]


def test_missing_required_field() -> None:
    errors = errors_of('[[queues]]\nskills = { a = 1 }\n[[agents]]\nname = "Ann"\n')
    assert errors == [
        'queues[0]: missing required field "name"',
        'agents[0]: missing required field "id"',
    ]


def test_several_errors_in_one_item_are_all_named() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        stratgy = "x"
        sla = { seconds = "20", target = 2 }
        skills = { billing = 7, english = 0, ok = 3 }
        offer_timeout = 0
        """
    )
    assert errors == [
        'queues[0]: unknown field "stratgy"; did you mean "strategy"?',
        "queues[0].sla.seconds: expected int, got str",
        "queues[0].sla.target: expected float <= 1.0",
        "queues[0].skills.billing: expected int <= 5",
        "queues[0].skills.english: expected int >= 1",
        "queues[0].offer_timeout: expected float > 0.0",
    ]


def test_errors_across_sections_are_all_named_in_document_order() -> None:
    errors = errors_of(
        """
        [routing]
        seed = "x"
        max_missed_offers = 0

        [[queues]]
        name = "a"
        priority = "high"

        [[queues]]
        name = "b"
        wrap_up = -1

        [[agents]]
        id = "x"
        capacity = { voice = -1 }
        """
    )
    assert errors == [
        "routing.seed: expected int, got str",
        "routing.max_missed_offers: expected int >= 1",
        "queues[0].priority: expected int, got str",
        "queues[1].wrap_up: expected float >= 0.0",
        "agents[0].capacity.voice: expected int >= 0",
    ]


def test_enum_error_lists_allowed_values() -> None:
    errors = errors_of('[[queues]]\nname = "a"\non_max_wait = { action = "overflw" }\n')
    assert errors == [
        'queues[0].on_max_wait.action: invalid value "overflw"; expected one of '
        '"keep", "overflow", "callback", "close", "voicemail"'
    ]


def test_skill_level_out_of_range_in_escalation_fallback() -> None:
    errors = errors_of(
        '[[queues]]\nname = "a"\nescalation = [{ after = 5, fallback = { tech = 9 } }]\n'
    )
    assert errors == ["queues[0].escalation[0].fallback.tech: expected int <= 5"]


def test_bad_list_item_names_its_index() -> None:
    errors = errors_of('[[queues]]\nname = "a"\nchannels = ["voice", 3]\n')
    assert errors == ["queues[0].channels[1]: expected str, got int"]


def test_unquoted_toml_date_gets_a_hint() -> None:
    errors = errors_of(
        '[[queues]]\nname = "a"\n'
        'hours = { holidays = [2025-12-25], weekly = { mon = ["09:00-17:00"] } }\n'
    )
    assert errors == ["queues[0].hours.holidays[0]: expected str, got date; write it in quotes"]


def test_odd_keys_are_quoted_in_paths() -> None:
    errors = errors_of('[[queues]]\nname = "a"\nskills = { "french speaking" = 6 }\n')
    assert errors == ['queues[0].skills."french speaking": expected int <= 5']


def test_reserved_sections_must_be_tables() -> None:
    errors = errors_of('store = 1\nserver = "x"\n')
    assert errors == ["store: expected object, got int", "server: expected object, got str"]


def test_plugins_sections_must_be_tables() -> None:
    errors = errors_of('[plugins]\ntelegram = "x"\n')
    assert errors == ["plugins.telegram: expected object, got str"]


def test_top_level_must_be_a_table() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict([1, 2])  # type: ignore[arg-type]
    assert info.value.errors == ["expected a table at the top level, got list"]


# ------------------------------------------------------------------ TOML syntax and files


def test_toml_syntax_error_names_source_line_and_column() -> None:
    errors = errors_of("a = 1\nb = = 2\n", source="omniroute.toml")
    assert errors == ["omniroute.toml: line 2, column 5: invalid value"]


def test_toml_syntax_error_default_source() -> None:
    errors = errors_of("[x]\n[x]\n")
    assert len(errors) == 1 and errors[0].startswith("<string>: line 2, column 3: cannot declare")


def test_toml_error_at_end_of_file() -> None:
    assert errors_of("a = ") == ["<string>: end of file: invalid value"]


def test_load_uses_the_path_as_source(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text("[[queues]\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    (line,) = info.value.errors
    assert line.startswith(f"{path}: line 1, column ")


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.errors == [f"{path}: cannot read: No such file or directory"]


def test_load_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.errors == [f"{path}: not UTF-8 text (byte 11)"]


# ------------------------------------------------------------------ environment secrets


def test_env_secret_is_substituted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_TOKEN", "s3cret")
    config = loads('[plugins.telegram]\ntoken = "${TELEGRAM_TOKEN}"\n')
    assert config.plugins == {"telegram": {"token": "s3cret"}}


def test_env_secret_anywhere_in_the_document() -> None:
    config = loads(
        '[[queues]]\nname = "${QUEUE}"\ncanned = ["hi", "${GREETING}"]\n',
        env={"QUEUE": "billing", "GREETING": "hello"},
    )
    assert config.queues[0].name == "billing"
    assert config.queues[0].canned == ["hi", "hello"]


def test_env_secret_only_in_exact_form() -> None:
    config = loads('[plugins.x]\na = "pre ${A}"\nb = "$A"\nc = "${A"\n', env={"A": "1"})
    assert config.plugins["x"] == {"a": "pre ${A}", "b": "$A", "c": "${A"}


def test_env_secret_unset_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_TOKEN", raising=False)
    errors = errors_of('[plugins.telegram]\ntoken = "${TELEGRAM_TOKEN}"\n')
    assert errors == ["plugins.telegram.token: environment variable TELEGRAM_TOKEN is not set"]


def test_env_secret_errors_in_lists_name_the_index() -> None:
    errors = errors_of('[[queues]]\nname = "a"\ncanned = ["x", "${NOPE}"]\n', env={})
    assert errors == ["queues[0].canned[1]: environment variable NOPE is not set"]


def test_from_dict_substitutes_without_mutating_the_input() -> None:
    data = {"plugins": {"telegram": {"token": "${T}"}}}
    config = from_dict(data, env={"T": "x"})
    assert config.plugins["telegram"]["token"] == "x"
    assert data["plugins"]["telegram"]["token"] == "${T}"


# ------------------------------------------------------------------ cross checks


def test_duplicate_queue_names() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "billing"
        [[queues]]
        name = "support"
        [[queues]]
        name = "sales"
        [[queues]]
        name = "billing"
        """
    )
    assert errors == ['queues[3].name: duplicate queue "billing" (also queues[0])']


def test_duplicate_agent_ids_and_empty_names() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = " "
        [[agents]]
        id = "ann"
        [[agents]]
        id = "ann"
        """
    )
    assert errors == [
        "queues[0].name: must not be empty",
        'agents[1].id: duplicate agent "ann" (also agents[0])',
    ]


def test_escalation_steps_must_increase_and_do_something() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        escalation = [
            { after = 30, relax = 1 },
            { after = 30, notify = true },
            { after = 20, priority = 2 },
            { after = 60 },
            { after = 90, callback = false },
        ]
        """
    )
    assert errors == [
        "queues[0].escalation[1].after: 30 is not after the previous step (30); "
        "steps must be in increasing order",
        "queues[0].escalation[2].after: 20 is not after the previous step (30); "
        "steps must be in increasing order",
        "queues[0].escalation[3]: the step does nothing; "
        "set relax, fallback, priority, overflow, callback or notify",
        "queues[0].escalation[4]: the step does nothing; "
        "set relax, fallback, priority, overflow, callback or notify",
    ]


def test_overflow_targets_must_exist_and_not_be_the_queue_itself() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "billing"
        escalation = [{ after = 10, overflow = "generl" }, { after = 20, overflow = "billing" }]
        on_max_wait = { action = "overflow", queue = "billing" }
        hours.closed = { action = "overflow", queue = "nowhere" }
        hours.weekly = { mon = ["09:00-17:00"] }
        [[queues]]
        name = "general"
        """
    )
    assert errors == [
        'queues[0].escalation[0].overflow: unknown queue "generl"; did you mean "general"?',
        'queues[0].escalation[1].overflow: "billing" is this queue itself; name another queue',
        'queues[0].on_max_wait.queue: "billing" is this queue itself; name another queue',
        'queues[0].hours.closed.queue: unknown queue "nowhere"',
    ]


def test_overflow_action_requires_a_queue() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        max_wait = 60
        on_max_wait = { action = "overflow" }
        hours = { closed = { action = "overflow" }, weekly = { mon = ["09:00-17:00"] } }
        """
    )
    assert errors == [
        'queues[0].on_max_wait: action "overflow" needs a queue (queue = "...")',
        'queues[0].hours.closed: action "overflow" needs a queue (queue = "...")',
    ]


def test_on_max_wait_without_max_wait_is_allowed() -> None:
    config = loads('[[queues]]\nname = "a"\non_max_wait = { action = "callback" }\n')
    assert config.queues[0].max_wait is None


def test_references_to_a_queue_that_failed_to_decode_are_not_reported() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        on_max_wait = { action = "overflow", queue = "b" }
        [[queues]]
        name = "b"
        priority = "x"
        """
    )
    assert errors == ["queues[1].priority: expected int, got str"]


def test_agent_queues_must_exist() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "support"
        [[agents]]
        id = "ann"
        queues = ["support", "suport", "nothing"]
        """
    )
    assert errors == [
        'agents[0].queues[1]: unknown queue "suport"; did you mean "support"?',
        'agents[0].queues[2]: unknown queue "nothing"',
    ]


def test_channels_must_be_non_empty() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        channels = ["voice", "", " "]
        [[queues]]
        name = "b"
        channels = []
        """
    )
    assert errors == [
        "queues[0].channels[1]: must not be empty",
        "queues[0].channels[2]: must not be empty",
        "queues[1].channels: an empty list accepts no channel; "
        "leave the key out to accept every channel",
    ]


def test_hours_timezone_must_be_known() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        hours = { timezone = "Europe/Pari", weekly = { mon = ["09:00-17:00"] } }
        [[queues]]
        name = "b"
        hours = { timezone = "utc", weekly = { mon = ["09:00-17:00"] } }
        [[queues]]
        name = "c"
        hours = { timezone = "../etc/passwd", weekly = { mon = ["09:00-17:00"] } }
        """
    )
    assert errors == [
        'queues[0].hours.timezone: unknown time zone "Europe/Pari"; did you mean "Europe/Paris"?',
        'queues[1].hours.timezone: unknown time zone "utc"; did you mean "UTC"?',
        'queues[2].hours.timezone: unknown time zone "../etc/passwd"',
    ]


def test_hours_weekly_days_and_ranges() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        [queues.hours.weekly]
        mon = ["09:00-17:00", "12:00-13:00", "9-17", "18:00-17:00", "20:00-24:00"]
        tue = ["08:00-12:00", "12:00-16:00", "00:00-24:30", "25:00-26:00", "10:60-11:00"]
        monday = ["09:00-17:00"]
        """
    )
    expected_range = 'expected HH:MM-HH:MM such as "09:00-17:30"'
    assert errors == [
        'queues[0].hours.weekly.mon[2]: invalid range "9-17"; ' + expected_range,
        'queues[0].hours.weekly.mon[3]: range "18:00-17:00" does not end after it starts',
        'queues[0].hours.weekly.mon[1]: range "12:00-13:00" overlaps "09:00-17:00"',
        'queues[0].hours.weekly.tue[2]: invalid range "00:00-24:30"; ' + expected_range,
        'queues[0].hours.weekly.tue[3]: invalid range "25:00-26:00"; ' + expected_range,
        'queues[0].hours.weekly.tue[4]: invalid range "10:60-11:00"; ' + expected_range,
        "queues[0].hours.weekly.monday: unknown day; days are mon, tue, wed, thu, fri, sat, sun",
    ]


def test_overlap_with_an_earlier_long_range_is_found() -> None:
    errors = errors_of(
        '[[queues]]\nname = "a"\n'
        'hours = { weekly = { mon = ["08:00-18:00", "09:00-10:00", "12:00-13:00"] } }\n'
    )
    assert errors == [
        'queues[0].hours.weekly.mon[1]: range "09:00-10:00" overlaps "08:00-18:00"',
        'queues[0].hours.weekly.mon[2]: range "12:00-13:00" overlaps "08:00-18:00"',
    ]


def test_hours_without_any_range_never_open() -> None:
    errors = errors_of('[[queues]]\nname = "a"\nhours = { weekly = { mon = [] } }\n')
    assert errors == [
        "queues[0].hours.weekly: no opening hours, so the queue never opens; "
        'add a range such as mon = ["09:00-17:00"]'
    ]


def test_hours_holidays_must_be_iso_dates() -> None:
    errors = errors_of(
        '[[queues]]\nname = "a"\n'
        'hours = { holidays = ["2025-12-25", "2025-13-01", "25.12.2025", "20251225"], '
        'weekly = { fri = ["09:00-12:00"] } }\n'
    )
    assert errors == [
        'queues[0].hours.holidays[1]: invalid date "2025-13-01"; expected YYYY-MM-DD',
        'queues[0].hours.holidays[2]: invalid date "25.12.2025"; expected YYYY-MM-DD',
        'queues[0].hours.holidays[3]: invalid date "20251225"; expected YYYY-MM-DD',
    ]


def test_cross_checks_still_run_on_an_item_with_type_errors() -> None:
    errors = errors_of(
        """
        [[queues]]
        name = "a"
        priority = "x"
        on_max_wait = { action = "overflow", queue = "zzz" }
        """
    )
    assert errors == [
        "queues[0].priority: expected int, got str",
        'queues[0].on_max_wait.queue: unknown queue "zzz"',
    ]


# ------------------------------------------------------------------ plugin-dependent checks


def test_unknown_strategy_and_queue_selector_list_installed_ones() -> None:
    config = loads(
        '[routing]\nqueue_selection = "fifo"\n'
        '[[queues]]\nname = "a"\nstrategy = "longest-idl"\n'
        '[[queues]]\nname = "b"\n'
    )
    assert plugin_errors(config) == [
        'queues[0].strategy: unknown strategy "longest-idl"; '
        "installed: best-skill, fewest-answered, least-talk-time, longest-idle, round-robin",
        'routing.queue_selection: unknown queue selector "fifo"; '
        "installed: oldest-first, priority-sla-wait",
    ]


def test_plugin_sections_decode_into_their_struct() -> None:
    config = loads('[plugins.telegram]\ntoken = "t"\n')
    decoded = validate_with_plugins(
        config,
        strategies=STRATEGIES,
        queue_selectors=SELECTORS,
        config_sections={"telegram": TelegramConfig},
    )
    assert decoded == {"telegram": TelegramConfig(token="t")}


def test_plugin_section_errors_are_prefixed() -> None:
    config = loads('[plugins.telegram]\ntokn = "t"\npoll_seconds = "x"\n')
    assert plugin_errors(config) == [
        'plugins.telegram: unknown field "tokn"; did you mean "token"?',
        "plugins.telegram.poll_seconds: expected float, got str",
        'plugins.telegram: missing required field "token"',
    ]


def test_unknown_plugin_section_names_installed_ones() -> None:
    config = loads('[plugins.telegrm]\ntoken = "t"\n[plugins.zzz]\n')
    assert plugin_errors(config) == [
        "plugins.telegrm: no installed plugin reads this section; "
        'installed sections: telegram; did you mean "telegram"?',
        "plugins.zzz: no installed plugin reads this section; installed sections: telegram",
    ]
    assert plugin_errors(config, sections={})[1] == (
        "plugins.zzz: no installed plugin reads this section; installed sections: none"
    )


def test_check_returns_every_line_and_accepts_section_records(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(
        '[[queues]]\nname = "a"\nstrategy = "nope"\n[plugins.telegram]\ntoken = "${T}"\n'
    )
    host = FakeHost({"telegram": SectionRecord("telegram", TelegramConfig)})
    # The secret is missing, so the file does not decode; the strategy is named anyway.
    assert check(path, host) == [
        'queues[0].strategy: unknown strategy "nope"; '
        "installed: best-skill, fewest-answered, least-talk-time, longest-idle, round-robin",
        "plugins.telegram.token: environment variable T is not set",
    ]
    path.write_text('[[queues]]\nname = "a"\nstrategy = "nope"\n[plugins.telegram]\ntoken = "x"\n')
    assert check(path, host) == [
        'queues[0].strategy: unknown strategy "nope"; '
        "installed: best-skill, fewest-answered, least-talk-time, longest-idle, round-robin"
    ]
    path.write_text('[plugins.telegram]\ntoken = "x"\n')
    assert check(path, host) == []
    assert validate_with_host(load(path), host) == {"telegram": TelegramConfig(token="x")}


def test_check_names_unknown_channels(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text(
        textwrap.dedent("""
            [[queues]]
            name = "support"
            channels = ["voice", "webchta", "sms"]
            [[agents]]
            id = "ana"
            capacity = { fax = 1, webchat = 2, sms = 1 }
            exclusive = ["voise"]
        """)
    )
    assert check(path, FakeHost()) == [
        'queues[0].channels[1]: unknown channel "webchta"; did you mean "webchat"?',
        'agents[0].capacity.fax: unknown channel "fax"; '
        "known: email, sms, telegram, voice, webchat",
        'agents[0].exclusive[0]: unknown channel "voise"; did you mean "voice"?',
    ]


def test_check_reads_the_store_section(tmp_path: Path) -> None:
    path = tmp_path / "omniroute.toml"
    path.write_text('[store]\nbackend = "sqlit"\n')
    assert check(path, FakeHost()) == [
        'store.backend: unknown backend "sqlit"; known: "sqlite", "postgres", "memory"'
    ]


def test_an_agent_listed_on_a_queue_they_cannot_serve_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(
            {
                "queues": [{"name": "returns", "skills": {"returns": 2, "english": 1}}],
                "agents": [
                    {"id": "bob", "skills": {"returns": 1}, "queues": ["returns"]},
                    {"id": "eve", "skills": {"returns": 3, "english": 1}, "queues": ["returns"]},
                ],
            }
        )
    assert info.value.errors == [
        'agents[0].queues[0]: queue "returns" requires returns 2, english 1, which agent '
        '"bob" lacks, so they would never be offered its work'
    ]
