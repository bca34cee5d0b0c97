"""Asterisk and SIP phones for tests and benchmarks: the real thing, on loopback.

`scripts/install-asterisk` puts Asterisk (Debian sid's package) in a chroot and sipp on
the host. `Asterisk` writes a private configuration into that chroot (ARI on a loopback
HTTP port, one PJSIP endpoint per phone, a trunk for callers, a dialplan sending every
call to the Stasis app), runs `asterisk -f -n` and stops it. `Phone` runs a sipp user
agent that answers (after a ring), rings out or rejects; `place_call` runs a sipp caller
that may press keys (SIP INFO) and hangs up or waits to be hung up.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

__all__ = [
    "ROOT",
    "Asterisk",
    "Phone",
    "asterisk_missing",
    "caller_scenario",
    "free_udp_ports",
    "phone_scenario",
    "write_silence",
]

#: Where `scripts/install-asterisk` puts the chroot.
ROOT = Path(os.environ.get("OMNIROUTE_ASTERISK_ROOT", "/var/cache/omniroute/asterisk-sid"))


def asterisk_missing() -> str | None:
    """Why the real-Asterisk tests cannot run here, or None when they can."""
    if not (ROOT / ".omniroute-installed").exists():
        return f"Asterisk is not installed in {ROOT} (run scripts/install-asterisk as root)"
    if shutil.which("sipp") is None:
        return "sipp is not installed (Debian package sip-tester; scripts/install-asterisk)"
    if os.geteuid() != 0:
        return "running Asterisk in its chroot needs root"
    return None


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_udp_ports(count: int) -> list[int]:
    """`count` UDP ports free on loopback now (each followed by a free one for media)."""
    ports: list[int] = []
    held: list[socket.socket] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            held.append(s)
            if port % 2 == 0 and port < 60000:
                ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


class Asterisk:
    """A private Asterisk in the chroot, with `phones` (name -> UDP port of its sipp)."""

    def __init__(
        self,
        phones: dict[str, int],
        *,
        app: str = "omniroute",
        customer_port: int | None = None,
    ) -> None:
        self.phones = phones
        self.app = app
        self.tag = f"omniroute-test-{os.getpid()}-{secrets.token_hex(3)}"
        self.etc = Path("/etc") / self.tag
        self.run_dir = Path("/var/run") / self.tag
        self.http_port = free_tcp_port()
        self.sip_port, self.customer_port = free_udp_ports(2)
        if customer_port is not None:
            self.customer_port = customer_port
        self.url = f"http://127.0.0.1:{self.http_port}/ari"
        self.user = "omniroute"
        self.password = secrets.token_urlsafe(12)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.gettempdir()) / f"{self.tag}.log"

    # -- files --------------------------------------------------------------------
    def host_path(self, inside: str | Path) -> Path:
        """A path inside the chroot, seen from the host."""
        return ROOT / str(inside).lstrip("/")

    @property
    def recordings(self) -> Path:
        return self.host_path("/var/spool/asterisk/recording")

    def _files(self) -> dict[str, str]:
        endpoints = []
        for name, port in self.phones.items():
            endpoints.append(
                f"[{name}]\ntype=endpoint\ncontext=from-phones\ndisallow=all\nallow=ulaw\n"
                f"aors={name}\ndirect_media=no\n\n"
                f"[{name}]\ntype=aor\ncontact=sip:{name}@127.0.0.1:{port}\n"
            )
        return {
            "asterisk.conf": (
                "[directories]\n"
                f"astetcdir => {self.etc}\n"
                "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules\n"
                "astvarlibdir => /var/lib/asterisk\n"
                f"astdbdir => {self.run_dir}\n"
                "astkeydir => /var/lib/asterisk\n"
                "astdatadir => /usr/share/asterisk\n"
                "astagidir => /usr/share/asterisk/agi-bin\n"
                "astspooldir => /var/spool/asterisk\n"
                f"astrundir => {self.run_dir}\n"
                "astlogdir => /var/log/asterisk\n"
                "astsbindir => /usr/sbin\n"
                "astcachedir => /var/cache/asterisk\n"
                "[options]\nmaxfiles = 8192\n"
            ),
            "modules.conf": "[modules]\nautoload=yes\n"
            + "".join(f"noload => {m}.so\n" for m in _NOLOAD),
            "logger.conf": "[general]\n[logfiles]\nconsole => error,warning\n",
            "http.conf": (
                f"[general]\nenabled=yes\nbindaddr=127.0.0.1\nbindport={self.http_port}\n"
            ),
            "ari.conf": (
                # A client busy for more than the default 100 ms would be cut off.
                "[general]\nenabled=yes\nwebsocket_write_timeout=5000\n"
                f"[{self.user}]\ntype=user\nread_only=no\n"
                f"password={self.password}\npassword_format=plain\n"
            ),
            "pjsip.conf": (
                "[global]\ntype=global\nuser_agent=omniroute-test\n\n"
                f"[udp]\ntype=transport\nprotocol=udp\nbind=127.0.0.1:{self.sip_port}\n\n"
                "[trunk]\ntype=endpoint\ncontext=from-trunk\ndisallow=all\nallow=ulaw\n"
                "aors=trunk\ndtmf_mode=info\ndirect_media=no\n\n"
                f"[trunk]\ntype=aor\ncontact=sip:127.0.0.1:{self.customer_port}\n\n"
                "[trunk]\ntype=identify\nendpoint=trunk\nmatch=127.0.0.1\n\n" + "\n".join(endpoints)
            ),
            "extensions.conf": (
                "[from-trunk]\n"
                f"exten => _X.,1,Stasis({self.app})\n same => n,Hangup()\n"
                "[from-phones]\n"
            ),
            # "stream": one shared source for every channel of the class (mode=custom),
            # which spares Asterisk a file reader and a transcoder per waiting caller.
            "musiconhold.conf": "[default]\nmode=files\ndirectory=moh\n\n"
            f"[stream]\nmode=custom\napplication={_MOH_LOOP}\nformat=ulaw\n",
            "rtp.conf": "[general]\nrtpstart=30000\nrtpend=40000\n",
            "indications.conf": "[general]\ncountry=us\n[us]\ndescription=US\n"
            "ringcadence=2000,4000\ndial=350+440\nbusy=480+620/500,0/500\n"
            "ring=440+480/2000,0/4000\ncongestion=480+620/250,0/250\n",
        }

    # -- process ------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        etc = self.host_path(self.etc)
        etc.mkdir(parents=True, exist_ok=True)
        self.host_path(self.run_dir).mkdir(parents=True, exist_ok=True)
        self.recordings.mkdir(parents=True, exist_ok=True)
        for name, text in self._files().items():
            (etc / name).write_text(text)
        _prepare_moh_stream()
        _known_hostname()
        log = self.log.open("wb")
        self.process = subprocess.Popen(
            ["chroot", str(ROOT), "asterisk", "-f", "-n", "-C", f"{self.etc}/asterisk.conf"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"Asterisk stopped at start-up; see {self.log}")
                if self._ari_up() and self._booted():
                    return
                time.sleep(0.1)
            raise RuntimeError(f"Asterisk's ARI did not come up in {timeout:g} s; see {self.log}")
        except BaseException:
            self.stop()  # never leave it running: nothing else would stop it
            raise

    def _booted(self) -> bool:
        """Asterisk says it is fully booted (a CLI that times out, on a busy machine,
        is asked again until `start`'s deadline)."""
        try:
            return "fully booted" in self.cli("core waitfullybooted")
        except subprocess.TimeoutExpired:
            return False

    def _ari_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.5) as s:
                s.sendall(b"GET /ari/asterisk/ping HTTP/1.0\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop Asterisk and remove its files; its log stays only if it did not stop
        cleanly (for a look at why)."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process is not None and process.returncode == 0:
            self.log.unlink(missing_ok=True)
        shutil.rmtree(self.host_path(self.etc), ignore_errors=True)
        shutil.rmtree(self.host_path(self.run_dir), ignore_errors=True)

    def cli(self, command: str) -> str:
        """Run an Asterisk CLI command (`asterisk -rx`) and return its output."""
        result = subprocess.run(
            ["chroot", str(ROOT), "asterisk", "-C", f"{self.etc}/asterisk.conf", "-rx", command],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return result.stdout

    def __enter__(self) -> Asterisk:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: The music of the "stream" class: a mu-law copy of a stock MOH file, played in a loop.
_MOH_LOOP = "/var/lib/asterisk/omniroute-moh-loop.sh"
_MOH_RAW = "/var/lib/asterisk/omniroute-moh.ulaw"


def _known_hostname() -> None:
    """Map this host's name in the chroot's /etc/hosts, as the host does: Asterisk looks
    it up, and a lookup that goes to a DNS server stalls its threads for seconds (answers
    took 15 s at 20 calls a second before this)."""
    hosts = ROOT / "etc/hosts"
    name = socket.gethostname()
    text = hosts.read_text() if hosts.exists() else ""
    if not any(name in line.split()[1:] for line in text.splitlines() if line.strip()):
        hosts.write_text(text.rstrip("\n") + f"\n127.0.0.1\t{name}\n")


def _prepare_moh_stream() -> None:
    raw = ROOT / _MOH_RAW.lstrip("/")
    if not raw.exists():
        subprocess.run(
            [
                "chroot",
                str(ROOT),
                "sox",
                "/usr/share/asterisk/moh/macroform-cold_day.gsm",
                "-t",
                "raw",
                "-e",
                "mu-law",
                "-r",
                "8000",
                "-c",
                "1",
                _MOH_RAW,
            ],
            check=True,
            capture_output=True,
        )
    loop = ROOT / _MOH_LOOP.lstrip("/")
    loop.write_text(f"#!/bin/sh\nwhile :; do cat {_MOH_RAW}; done\n")
    loop.chmod(0o755)


#: Modules not needed and slow or noisy to load in a test Asterisk.
_NOLOAD = [
    "res_timing_pthread",
    "res_timing_dahdi",
    "chan_dahdi",
    "chan_iax2",
    "chan_mgcp",
    "chan_skinny",
    "chan_unistim",
    "chan_ooh323",
    "chan_motif",
    "chan_console",
    "chan_alsa",
    "chan_oss",
    "chan_mobile",
    "chan_websocket",
    "chan_audiosocket",
    "chan_rtp",
    "res_hep",
    "res_hep_pjsip",
    "res_hep_rtcp",
    "res_xmpp",
    "res_calendar",
    "res_calendar_caldav",
    "res_calendar_ews",
    "res_calendar_exchange",
    "res_calendar_icalendar",
    "res_corosync",
    "res_prometheus",
    "res_phoneprov",
    "res_pjsip_phoneprov_provider",
    "res_smdi",
    "res_snmp",
    "res_config_ldap",
    "res_config_mysql",
    "res_config_odbc",
    "res_config_pgsql",
    "res_config_sqlite3",
    "res_odbc",
    "res_odbc_transaction",
    "pbx_lua",
    "pbx_ael",
    "pbx_dundi",
    "cdr_radius",
    "cel_radius",
    "cdr_pgsql",
    "cel_pgsql",
    "cdr_tds",
    "cel_tds",
    "cdr_odbc",
    "cel_odbc",
    "cdr_adaptive_odbc",
    "cdr_sqlite3_custom",
    "cel_sqlite3_custom",
    "cdr_beanstalkd",
    "cel_beanstalkd",
    "cdr_manager",
    "app_voicemail",
    "app_voicemail_imap",
    "app_voicemail_odbc",
    "app_minivm",
    "app_meetme",
    "app_festival",
    "res_pjsip_outbound_publish",
    "res_statsd",
    "res_stun_monitor",
    "res_aeap",
    "res_speech_aeap",
    "res_geolocation",
    "res_pjsip_geolocation",
    "res_ari_mailboxes",
    "res_stasis_mailbox",
    "res_mwi_external",
    "res_mwi_external_ami",
    "res_pjsip_stir_shaken",
    "res_stir_shaken",
    "res_pjsip_config_wizard",
    "res_http_media_cache",
    "res_pjsip_publish_asterisk",
    "res_pjsip_exten_state",
    "res_pjsip_send_to_voicemail",
    "res_pjsip_refer",
    "res_pjsip_notify",
    "res_pjsip_outbound_registration",
]


# ---------------------------------------------------------------------- sipp

Action = Literal["answer", "reject", "ringout"]


def phone_scenario(
    action: Action = "answer",
    *,
    ring_ms: int | tuple[int, int] = 500,
    talk_ms: int | None = None,
    reject_code: int = 486,
) -> str:
    """A phone for sipp's UAS mode, for every call it gets: ring `ring_ms` (or a random
    time in a range) then answer, ring until cancelled, or reject with `reject_code`.
    Answered, it hangs up after `talk_ms` (None: waits for the other side's BYE)."""
    ringing = _response(180, "Ringing")
    dialog = (
        '<ereg regexp=".*" search_in="hdr" header="From:" assign_to="rfrom"/>'
        '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="rto"/>'
        '<ereg regexp="sip:[^&gt;;]*" search_in="hdr" header="Contact:" assign_to="rcontact"/>'
    )
    head = (
        '<recv request="INVITE"><action>'
        f"{dialog if action == 'answer' else ''}"
        '<ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="icseq"/>'
        "</action></recv>"
        f"{_response(100, 'Trying')}{ringing}"
    )
    cancelled = (
        '<label id="cancelled"/>'
        f"{_response(200, 'OK')}"  # to the CANCEL
        f"{_invite_response(487, 'Request Terminated')}"
        '<recv request="ACK" next="end"/>'
    )
    if action == "reject":
        body = f'{_response(reject_code, "Busy Here")}<recv request="ACK" next="end"/>'
        return _scenario("phone", head + body + cancelled)
    if action == "ringout":
        return _scenario("phone", head + '<recv request="CANCEL" next="cancelled"/>' + cancelled)
    if isinstance(ring_ms, tuple):
        low, high = ring_ms
        wait = f'<pause distribution="uniform" min="{low}" max="{high}"/>'
    else:
        wait = (
            f'<recv request="CANCEL" timeout="{max(1, ring_ms)}" ontimeout="answer" '
            'next="cancelled"/>'
        )
    answer = (
        f'{wait}<label id="answer"/>'
        f'<send retrans="500"><![CDATA[\n{_INVITE_OK}]]></send>'
        '<recv request="ACK"/>'
    )
    talk = _talk(talk_ms, from_var="rto", to_var="rfrom", target="[$rcontact]", uas=True)
    return _scenario("phone", head + answer + talk + cancelled)


def caller_scenario(
    *,
    caller: str = "5551234",
    keys: Sequence[tuple[int, str]] = (),
    hold_ms: int = 10_000,
    audio: bool = True,
) -> str:
    """A caller for sipp's UAC mode: dials the service number (`-s`), then for each
    `(wait_ms, key)` waits and presses the key (SIP INFO), then hangs up after `hold_ms`,
    or earlier when the other side hangs up. With `audio` it streams silence (RTP) like
    a real phone; run it in a folder holding `write_silence()`'s file."""
    me = f'"Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]'
    invite = f"""INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: {me}
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{_SDP}"""
    steps = [
        f'<send retrans="500"><![CDATA[\n{invite}]]></send>',
        '<recv response="100" optional="true"/>',
        '<recv response="180" optional="true"/>',
        '<recv response="183" optional="true"/>',
        '<recv response="200" rrs="true"><action>'
        '<ereg regexp=".*" search_in="hdr" header="To:" assign_to="rto"/></action></recv>',
        "<send><![CDATA[\nACK [next_url] SIP/2.0\n"
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        f"From: {me}\nTo: [$rto]\nCall-ID: [call_id]\nCSeq: 1 ACK\n"
        f"Contact: <sip:{caller}@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
        "Content-Length: 0\n\n]]></send>",
    ]
    if audio:
        # A phone sends audio all the time; without it Asterisk's channel thread waits
        # for a frame after music on hold stops, and prompts queue up unplayed.
        steps.append(f'<nop><action><exec rtp_stream="{SILENCE},-1,0"/></action></nop>')
    for i, (wait_ms, key) in enumerate(keys):
        steps.append(
            f'<recv request="BYE" timeout="{max(1, wait_ms)}" ontimeout="k{i}" next="bye"/>'
            f'<label id="k{i}"/>'
            "<send><![CDATA[\nINFO [next_url] SIP/2.0\n"
            "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
            f"From: {me}\nTo: [$rto]\nCall-ID: [call_id]\nCSeq: {i + 2} INFO\n"
            f"Contact: <sip:{caller}@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
            "Content-Type: application/dtmf-relay\nContent-Length: [len]\n\n"
            f"Signal={key}\r\nDuration=160\r\n]]></send>"
            '<recv response="200"/>'
        )
    steps.append(
        f'<recv request="BYE" timeout="{max(1, hold_ms)}" ontimeout="hangup" next="bye"/>'
        '<label id="hangup"/>'
        '<send retrans="500"><![CDATA[\nBYE [next_url] SIP/2.0\n'
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        f"From: {me}\nTo: [$rto]\nCall-ID: [call_id]\nCSeq: {len(keys) + 2} BYE\n"
        f"Contact: <sip:{caller}@[local_ip]:[local_port]>\nMax-Forwards: 70\n"
        "Content-Length: 0\n\n]]></send>"
        '<recv response="200" next="end"/>'
        f'<label id="bye"/>{_response(200, "OK")}'
        '<label id="end"/>'
    )
    return _scenario("caller", "".join(steps), end_label=False)


#: The file `caller_scenario` streams, in the folder sipp runs in.
SILENCE = "silence.wav"


def write_silence(folder: Path) -> Path:
    """One second of mu-law silence as a WAV file (what sipp's rtp_stream plays)."""
    data = b"\xff" * 8000
    header = (
        b"RIFF"
        + (36 + len(data)).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (7).to_bytes(2, "little")  # mu-law
        + (1).to_bytes(2, "little")
        + (8000).to_bytes(4, "little")
        + (8000).to_bytes(4, "little")
        + (1).to_bytes(2, "little")
        + (8).to_bytes(2, "little")
        + b"data"
        + len(data).to_bytes(4, "little")
    )
    path = folder / SILENCE
    path.write_bytes(header + data)
    return path


_SDP = """v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

_INVITE_OK = f"""SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Type: application/sdp
Content-Length: [len]

{_SDP}"""


def _response(code: int, reason: str) -> str:
    return (
        f"<send><![CDATA[\nSIP/2.0 {code} {reason}\n[last_Via:]\n[last_From:]\n"
        "[last_To:];tag=[pid]SIPpTag01[call_number]\n[last_Call-ID:]\n[last_CSeq:]\n"
        "Contact: <sip:[local_ip]:[local_port];transport=[transport]>\n"
        "Content-Length: 0\n\n]]></send>"
    )


def _invite_response(code: int, reason: str) -> str:
    """A final response to the INVITE after a CANCEL (its CSeq is the INVITE's)."""
    return (
        f"<send><![CDATA[\nSIP/2.0 {code} {reason}\n[last_Via:]\n[last_From:]\n"
        "[last_To:];tag=[pid]SIPpTag01[call_number]\n[last_Call-ID:]\n"
        "CSeq: [$icseq] INVITE\nContent-Length: 0\n\n]]></send>"
    )


def _talk(talk_ms: int | None, *, from_var: str, to_var: str, target: str, uas: bool) -> str:
    wait = talk_ms if talk_ms is not None else 3_600_000
    return (
        f'<recv request="BYE" timeout="{max(1, wait)}" ontimeout="hangup" next="bye"/>'
        '<label id="hangup"/>'
        f'<send retrans="500"><![CDATA[\nBYE {target} SIP/2.0\n'
        "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]\n"
        f"From: [${from_var}];tag=[pid]SIPpTag01[call_number]\n"
        f"To: [${to_var}]\nCall-ID: [call_id]\nCSeq: 2 BYE\n"
        "Contact: <sip:[local_ip]:[local_port]>\nMax-Forwards: 70\n"
        "Content-Length: 0\n\n]]></send>"
        '<recv response="200" next="end"/>'
        f'<label id="bye"/>{_response(200, "OK")}'
    )


def _scenario(name: str, body: str, *, end_label: bool = True) -> str:
    end = '<label id="end"/>' if end_label else ""
    return (
        '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
        f'<scenario name="{name}">{body}{end}</scenario>\n'
    )


class Phone:
    """A sipp process playing one SIP phone (UAS) on a loopback port."""

    def __init__(self, port: int, scenario: str, *, calls: int | None = None) -> None:
        self.port = port
        self.scenario = scenario
        self.calls = calls
        self.process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="omniroute-sipp-")

    def start(self) -> Phone:
        path = Path(self._dir) / "scenario.xml"
        path.write_text(self.scenario)
        command = [*_sipp_base(self.port), "-sf", str(path)]
        if self.calls is not None:
            command += ["-m", str(self.calls)]
        self.process = subprocess.Popen(
            command,
            cwd=self._dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Phone:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def caller_command(
    asterisk: Asterisk,
    scenario_path: Path,
    *,
    number: str,
    port: int,
    calls: int = 1,
    rate: float | None = None,
    limit: int | None = None,
) -> list[str]:
    """The sipp command line placing `calls` calls to `number` through the trunk."""
    command = [
        *_sipp_base(port),
        "-sf",
        str(scenario_path),
        "-s",
        number,
        "-m",
        str(calls),
        f"127.0.0.1:{asterisk.sip_port}",
    ]
    if rate is not None:
        command += ["-r", f"{rate:g}", "-rp", "1000"]
    if limit is not None:
        command += ["-l", str(limit)]
    return command


def _sipp_base(port: int) -> list[str]:
    return [
        "sipp",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        "-mp",
        str(port + 1),
        "-nostdin",
        "-timeout_error",
        "-max_recv_loops",
        "1000",
        "-recv_timeout",
        "600000",
    ]
