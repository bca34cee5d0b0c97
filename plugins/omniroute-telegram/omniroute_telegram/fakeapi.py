"""A local stand-in for Telegram's Bot API, on loopback, for tests and benchmarks.

It speaks the parts of the Bot API the plugin uses (getMe, getUpdates with offsets and
long polling, sendMessage, sendPhoto, sendDocument, sendVoice, getFile and file
downloads, answerCallbackQuery, setWebhook and deleteWebhook, with webhook delivery
retried until answered 200), so python-telegram-bot runs against it unchanged through
`base_url` and `base_file_url`. It can inject what the real one does on a bad day: 429
with retry_after, 5xx, dropped connections and malformed updates.

    async with FakeBotApi.running() as api:
        api.text(42, "hello")                  # user 42 writes to the bot
        settings = {"api_url": api.api_url, "file_url": api.file_url, ...}
        api.fail("sendMessage", status=429, retry_after=1, times=2)
        ...
        assert api.sent_texts(42) == [...]

For a demo or a trial without Telegram, run it on a fixed port and act as a customer
over HTTP (it prints the token, the settings and the commands):

    python -m omniroute_telegram.fakeapi --port 8081
    curl -X POST localhost:8081/fake/users/42/messages -d '{"text": "hello"}'
    curl localhost:8081/fake/users/42/messages        # what the bot sent user 42
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import itertools
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["FakeBotApi", "Fault", "Sent"]

TOKEN = "123456:TEST-token-for-the-local-bot-api"


@dataclass
class Fault:
    """What the next `times` calls of `method` get instead of an answer."""

    method: str
    status: int = 500  # 429 comes with retry_after; 0 drops the connection mid-answer
    times: int = 1
    retry_after: int = 1


@dataclass
class Sent:
    """One call the bot made that sends something to a chat."""

    method: str
    chat_id: int
    text: str | None = None
    file: bytes | None = None
    filename: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


class _Drop(Exception):
    """Raised after starting an answer: the connection closes with the answer unfinished."""


class FakeBotApi:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.url = ""  # set once serving: http://127.0.0.1:PORT
        self.updates: list[dict[str, Any]] = []  # not yet confirmed by an offset
        self.sent: list[Sent] = []
        self.calls: list[str] = []  # every method called, in order
        self.faults: list[Fault] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (path, content)
        self.webhook: tuple[str, str] | None = None  # url, secret
        self.webhook_answers: list[int] = []
        self.confirmed = 0  # every update below this id was confirmed by getUpdates
        #: True: offsets confirm nothing (as if the bot died before its next getUpdates),
        #: so every update is sent again.
        self.forget_confirmations = False
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._news = anyio.Event()

    # ------------------------------------------------------------------ running

    @classmethod
    @asynccontextmanager
    async def running(
        cls, token: str = TOKEN, port: int = 0, host: str = "127.0.0.1"
    ) -> AsyncIterator[FakeBotApi]:
        """Serve on loopback (`port` 0: a free one) until the block ends."""
        api = cls(token)
        config = uvicorn.Config(
            api.asgi(), host=host, port=port, log_level="warning", lifespan="off"
        )
        server = uvicorn.Server(config)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            tg.start_soon(api._deliver_webhooks)
            with anyio.fail_after(10):
                while not server.started:
                    await anyio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            api.url = f"http://{host}:{port}"
            try:
                yield api
            finally:
                server.should_exit = True
                tg.cancel_scope.cancel()

    @property
    def api_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def file_url(self) -> str:
        return f"{self.url}/file/bot"

    def asgi(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/bot{token}/{method}", self._method, methods=["GET", "POST"]),
                Route("/file/bot{token}/{path:path}", self._file),
                Route("/fake/users/{user:int}/messages", self._customer, methods=["GET", "POST"]),
            ]
        )

    # ------------------------------------------------------------------ what customers do

    def text(self, user: int, text: str, **message: Any) -> int:
        """User `user` writes `text` in their private chat with the bot; answers the
        update's id."""
        return self._message(user, {"text": text, **message})

    def photo(self, user: int, content: bytes, caption: str | None = None) -> int:
        file_id = self.add_file(content, "photos/file.jpg")
        sizes = [
            {"file_id": f"{file_id}-small", "file_unique_id": "s", "width": 90, "height": 90},
            {
                "file_id": file_id,
                "file_unique_id": file_id,
                "width": 800,
                "height": 600,
                "file_size": len(content),
            },
        ]
        return self._message(user, {"photo": sizes, **({"caption": caption} if caption else {})})

    def document(self, user: int, content: bytes, name: str, mime: str = "") -> int:
        file_id = self.add_file(content, f"documents/{name}")
        doc = {"file_id": file_id, "file_unique_id": file_id, "file_name": name}
        doc["file_size"] = len(content)  # type: ignore[assignment]
        if mime:
            doc["mime_type"] = mime
        return self._message(user, {"document": doc})

    def voice(self, user: int, content: bytes, duration: int = 3) -> int:
        file_id = self.add_file(content, "voice/file.oga")
        voice = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(content),
        }
        return self._message(user, {"voice": voice})

    def press(self, user: int, data: str, message_id: int = 1) -> int:
        """User `user` presses an inline-keyboard button carrying `data`."""
        chat = _chat(user)
        return self.update(
            {
                "callback_query": {
                    "id": secrets.token_hex(8),
                    "from": _user(user),
                    "chat_instance": str(user),
                    "data": data,
                    "message": {
                        "message_id": message_id,
                        "date": int(time.time()),
                        "chat": chat,
                        "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
                        "text": "menu",
                    },
                }
            }
        )

    def update(self, body: dict[str, Any]) -> int:
        """Any update (malformed ones too); `update_id` is added if absent."""
        update_id = body.setdefault("update_id", next(self._ids))
        self.updates.append(body)
        self._news.set()
        return int(update_id)

    def add_file(self, content: bytes, path: str) -> str:
        file_id = f"f{len(self.files) + 1}-{secrets.token_hex(4)}"
        self.files[file_id] = (f"{file_id}/{path}", content)
        return file_id

    def _message(self, user: int, fields: dict[str, Any]) -> int:
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat(user),
            "from": _user(user),
            **fields,
        }
        return self.update({"message": message})

    async def _customer(self, request: Request) -> Response:
        """A person plays the customer over HTTP: POST `{"text": ...}` writes to the bot
        as that user; GET lists what the bot sent them."""
        user = int(request.path_params["user"])
        if request.method == "GET":
            return JSONResponse([{"method": s.method, "text": s.text} for s in self.sent_to(user)])
        try:
            text = json.loads(await request.body())["text"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"text": "..."}'}, status_code=422)
        if not isinstance(text, str) or not text:
            return JSONResponse({"error": '"text" must be a non-empty string'}, status_code=422)
        return JSONResponse({"update_id": self.text(user, text)}, status_code=201)

    # ------------------------------------------------------------------ faults

    def fail(self, method: str, status: int = 500, *, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` fail: status 429 (with retry_after), a 5xx,
        or 0 to drop the connection in the middle of the answer."""
        self.faults.append(Fault(method, status, times, retry_after))

    def _fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    # ------------------------------------------------------------------ what the bot did

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    def sent_texts(self, chat_id: int) -> list[str]:
        return [s.text or "" for s in self.sent_to(chat_id) if s.text is not None]

    async def wait_for(self, predicate: Any, timeout: float = 10) -> None:
        """Wait until `predicate()` is true (polling the fake's state)."""
        with anyio.fail_after(timeout):
            while not predicate():
                await anyio.sleep(0.01)

    # ------------------------------------------------------------------ the API

    async def _method(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.path_params["method"]
        self.calls.append(method)
        params = await _params(request)
        fault = self._fault(method)
        if fault is not None:
            if fault.status == 0:
                return _DroppedResponse()
            if fault.status == 429:
                return _error(
                    429,
                    f"Too Many Requests: retry after {fault.retry_after}",
                    parameters={"retry_after": fault.retry_after},
                )
            return _error(fault.status, "Internal Server Error")
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        result = await handler(params)
        if isinstance(result, Response):
            return result
        return JSONResponse({"ok": True, "result": result})

    async def _api_getMe(self, params: dict[str, Any]) -> Any:
        return {"id": 1, "is_bot": True, "first_name": "Bot", "username": "omniroute_test_bot"}

    async def _api_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active")
        offset = int(params.get("offset") or 0)
        if offset and not self.forget_confirmations:
            self.confirmed = max(self.confirmed, offset)
            self.updates = [u for u in self.updates if _update_id(u) >= offset]
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        with anyio.move_on_after(timeout):
            while not [u for u in self.updates if _update_id(u) >= offset]:
                self._news = anyio.Event()
                await self._news.wait()
        if self.forget_confirmations:
            return [u for u in self.updates if _update_id(u) >= offset][:limit]
        return self.updates[:limit]

    async def _api_sendMessage(self, params: dict[str, Any]) -> Any:
        return self._sent("sendMessage", params, text=str(params["text"]))

    async def _api_sendPhoto(self, params: dict[str, Any]) -> Any:
        return self._sent("sendPhoto", params, upload="photo")

    async def _api_sendDocument(self, params: dict[str, Any]) -> Any:
        return self._sent("sendDocument", params, upload="document")

    async def _api_sendVoice(self, params: dict[str, Any]) -> Any:
        return self._sent("sendVoice", params, upload="voice")

    async def _api_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _api_getFile(self, params: dict[str, Any]) -> Any:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            return _error(400, "Bad Request: invalid file_id")
        path, content = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_size": len(content),
            "file_path": path,
        }

    async def _api_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = (str(params["url"]), str(params.get("secret_token") or ""))
        self._news.set()
        return True

    async def _api_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = None
        return True

    def _sent(self, method: str, params: dict[str, Any], *, text: str | None = None,
              upload: str | None = None) -> dict[str, Any]:  # fmt: skip
        chat_id = int(params["chat_id"])
        sent = Sent(method, chat_id, text=text, params=params)
        if upload is not None:
            value = params.get(upload)
            if isinstance(value, tuple):
                sent.filename, sent.file = value
            sent.text = None if text is None else text
        self.sent.append(sent)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
        }
        if text is not None:
            message["text"] = text
        return message

    async def _file(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.path_params["path"]
        fault = self._fault("file")
        if fault is not None:
            return _DroppedResponse() if fault.status == 0 else _error(fault.status, "error")
        for stored, content in self.files.values():
            if stored == path:
                return Response(content, media_type="application/octet-stream")
        return _error(404, "Not Found")

    # ------------------------------------------------------------------ webhook delivery

    async def _deliver_webhooks(self) -> None:
        """Like Telegram: post each update, in order, until the bot answers 200."""
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                if self.webhook is None or not self.updates:
                    await anyio.sleep(0.02)
                    continue
                url, secret = self.webhook
                update = self.updates[0]
                try:
                    answer = await client.post(
                        url,
                        content=json.dumps(update),
                        headers={
                            "content-type": "application/json",
                            "X-Telegram-Bot-Api-Secret-Token": secret,
                        },
                    )
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                self.webhook_answers.append(status)
                if status == 200:
                    self.updates.pop(0)
                else:
                    await anyio.sleep(0.05)


class _DroppedResponse(Response):
    """Starts an answer, then fails: the server closes the connection half-way."""

    def __init__(self) -> None:
        super().__init__(b"", status_code=200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"100"), (b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"ok": tr', "more_body": True})
        raise _Drop("dropped on purpose")


async def _params(request: Request) -> dict[str, Any]:
    """Parameters as python-telegram-bot sends them: a query string, a urlencoded form,
    JSON, or multipart with uploads (an upload becomes a (filename, bytes) pair)."""
    params: dict[str, Any] = dict(request.query_params)
    body = await request.body()
    kind = request.headers.get("content-type", "")
    if not body:
        return params
    if kind.startswith("application/json"):
        params.update(json.loads(body))
    elif kind.startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode()))
    elif kind.startswith("multipart/form-data"):
        head = f"Content-Type: {kind}\r\n\r\n".encode()
        parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in parsed.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            content = part.get_payload(decode=True) or b""
            if filename is not None:
                params[str(name)] = (filename, content)
            else:
                params[str(name)] = content.decode()
        for key, value in params.items():  # an upload is referred to as attach://name
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = params.get(value.removeprefix("attach://"), value)
    return params


def _error(status: int, description: str, **extra: Any) -> Response:
    return JSONResponse(
        {"ok": False, "error_code": status, "description": description, **extra},
        status_code=status,
    )


def _update_id(update: dict[str, Any]) -> int:
    value = update.get("update_id")
    return value if isinstance(value, int) else 0


def _user(user: int) -> dict[str, Any]:
    return {"id": user, "is_bot": False, "first_name": f"User{user}", "language_code": "en"}


def _chat(user: int) -> dict[str, Any]:
    return {"id": user, "type": "private", "first_name": f"User{user}"}


_USAGE = """fake Telegram Bot API on {url} (Ctrl-C stops it)
  export TELEGRAM_BOT_TOKEN='{token}'
  [plugins.telegram] api_url = "{url}/bot"
                     file_url = "{url}/file/bot"
  a customer (user 42) writes:  curl -X POST {url}/fake/users/42/messages -d '{{"text": "hello"}}'
  what the bot sent them:       curl {url}/fake/users/42/messages
"""


def main(argv: list[str] | None = None) -> None:
    """`python -m omniroute_telegram.fakeapi --port 8081`: the local Bot API on a fixed
    port, for demos and trials of the Telegram channel without Telegram."""
    parser = argparse.ArgumentParser(
        prog="python -m omniroute_telegram.fakeapi", description=main.__doc__
    )
    parser.add_argument(
        "--port", type=int, default=8081, help="port (default 8081; 0: any free one)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default loopback)"
    )
    parser.add_argument("--token", default=TOKEN, help="the bot token it accepts")
    args = parser.parse_args(argv)

    async def serve() -> None:
        async with FakeBotApi.running(args.token, args.port, args.host) as api:
            print(_USAGE.format(url=api.url, token=api.token), end="", flush=True)
            await anyio.sleep_forever()

    try:
        anyio.run(serve)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
