"""Handlers that stream their request body in, and how they refuse one.

A streaming handler (``@web.stream_request_body``) decides before the body arrives:
authentication, authorization, size. Answering right then leaves the body unread, so
tornado closes the connection as soon as the answer is written; the client, told
nothing, finds its keep-alive connection reset on the next request (and one still
sending may never read the answer). So a refusal is answered once the body is in
(read and discarded) when the body is small, and at once with ``Connection: close``
when it is large, of unknown length, or not sent yet (``Expect: 100-continue``).
"""

from __future__ import annotations

from typing import Any

from tornado import web

DRAIN_LIMIT = 8 * 1024 * 1024  # bytes of a refused body read and dropped to keep its connection
HUGE = 10**18  # what a Content-Length of over 18 digits counts as (int() refuses 4,300)


def announced_length(headers: Any) -> int | None:
    """The request's Content-Length in bytes; None when absent or not a number."""
    length = headers.get("Content-Length", "")
    if not (length.isascii() and length.isdigit()):
        return None
    return int(length) if len(length) <= 18 else HUGE


class StreamingHandler(web.RequestHandler):
    """Subclasses accept the body in ``accept_body`` and take it in ``receive``."""

    refusal: web.HTTPError | None = None
    _close_after_answer = False

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            await super().prepare()  # type: ignore[misc]  # the mode's authentication
            if not self._finished:
                await self.accept_body()
        except web.HTTPError as error:
            self._refuse(error)

    async def accept_body(self) -> None:
        """Authorize the request and get ready for its body; raise an HTTPError to refuse."""

    def receive(self, chunk: bytes) -> None:
        """A chunk of an accepted body."""

    def data_received(self, chunk: bytes) -> None:
        if self.refusal is None and not self._finished:
            self.receive(chunk)

    def refuse_now(self, error: web.HTTPError) -> None:
        """Refuse while the body streams in (it outgrew a limit): answer, then close."""
        self._close_after_answer = True
        self.send_error(error.status_code, exc_info=(type(error), error, None))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if self._close_after_answer:  # set here: send_error clears earlier headers
            self.set_header("Connection", "close")
        super().write_error(status_code, **kwargs)

    def _refuse(self, error: web.HTTPError) -> None:
        if not self._drainable():
            self._close_after_answer = self._has_body()
            raise error
        self.refusal = error
        self.request.connection.set_max_body_size(DRAIN_LIMIT)  # type: ignore[attr-defined]
        # Tornado calls the method's handler once the body is in; answer the refusal instead,
        # before anything of the handler (its own authorization included) runs.
        setattr(self, (self.request.method or "get").lower(), self._answer_refusal)

    async def _answer_refusal(self, *args: str, **kwargs: str) -> None:
        assert self.refusal is not None
        raise self.refusal

    def _has_body(self) -> bool:
        headers = self.request.headers
        return "Transfer-Encoding" in headers or headers.get("Content-Length", "0") != "0"

    def _drainable(self) -> bool:
        """A body to wait for: announced, small, and on its way."""
        headers = self.request.headers
        length = announced_length(headers)
        return (
            self._has_body()
            and length is not None
            and length <= DRAIN_LIMIT
            and headers.get("Expect", "").lower() != "100-continue"
        )
