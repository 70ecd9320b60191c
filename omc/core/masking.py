"""Masking secrets: the one place that decides what a credential looks like and hides it.

Everything OMC shows or records — `omc config`, log lines, error messages, run records, the
quarantine — goes through these functions:

* `mask_url(url)` hides the credentials a URL can carry: the password of `user:pw@host`
  (a bare `token@host` too), Telegram's `/bot<token>/`, everything after Slack's
  `/services/`, Discord's webhook token, a key-like path segment (Infura `/v3/<key>`,
  Alchemy `/v2/<key>`, QuickNode, Ankr) and query values whose name says credential
  (`api_key`, `apikey`, `key`, `token`, `auth_token`, `secret`, `password`, `signature`, …).
  `whole_path=True` hides the whole path and query (a generic webhook URL is itself a secret).
* `mask_text(text, limit=None)` masks every URL in free text, bare Telegram bot tokens and
  `name=value` / `'name': 'value'` pairs with a credential name (HTTP header dumps such as
  CCXT's debug log), then — only then — cuts to `limit`, so a cut can never split a secret
  into a part that escapes masking.
* `Redactor(*secrets)` also replaces known secret values (and their URL-encoded forms); as a
  `logging.Filter` it cleans records of the loggers that print URLs and headers
  (`install_log_redaction`). `register_secrets()` adds values to the process-wide filter.
* `mask_setting(name, value)` is what `omc config` prints for one setting.
* `secret_hint(key)` is how a stored credential is shown (`****abcd`).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from omc.core.http import HttpError, PayloadError, RequestFailed, Unreachable

MASK = "***"

# Loggers that print full URLs, headers or bodies.
URL_LOGGERS = (
    "httpx",
    "httpcore",
    "omc.core.http",
    "omc.ledgers.collectors.base",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "ccxt.base.exchange",
    "ccxt.async_support.base.exchange",
    "urllib3.connectionpool",
)

_CREDENTIAL_WORDS = (
    "api_key|apikey|api-key|access_key|access-key|accesskey|auth|auth_token|authorization|"
    "access_token|refresh_token|client_secret|token|key|secret|password|passwd|passphrase|"
    "private_key|privatekey|signature|sign|sig"
)
# a whole parameter / header name that says "credential" (`key`, `X-MBX-APIKEY`, `KC-API-KEY`)
_NAME = rf"(?:[\w.\-]*[-_.])?(?:{_CREDENTIAL_WORDS})"
_CREDENTIAL_NAME = re.compile(rf"^{_NAME}$", re.IGNORECASE)
_QUOTED_PAIR = re.compile(
    rf"""(?P<q>['"])(?P<name>{_NAME})(?P=q)(?P<sep>\s*:\s*)(?P<vq>['"])(?P<value>[^'"]*)(?P=vq)""",
    re.IGNORECASE,
)
_PLAIN_PAIR = re.compile(
    rf"(?<![\w.\-])(?P<name>{_NAME})=(?P<value>[^&\s'\"<>,;}}]+)", re.IGNORECASE
)
_URL = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s'\"<>`]+")
_TELEGRAM_TOKEN = re.compile(r"(?<![\w:])\d{5,12}:[A-Za-z0-9_\-]{20,}")
_TELEGRAM_PATH = re.compile(r"/bot\d+(?::|%3A)[^/]*", re.IGNORECASE)
_KEYLIKE_CHARS = re.compile(r"^[A-Za-z0-9_\-]{20,}$")


def _keylike(segment: str) -> bool:
    """A random-looking token (API keys in RPC URLs): long, letters and digits, not a slug."""
    if not _KEYLIKE_CHARS.match(segment):
        return False
    if not (any(c.isdigit() for c in segment) and any(c.isalpha() for c in segment)):
        return False
    return max(len(piece) for piece in re.split(r"[-_]", segment)) >= 16


def _mask_path(host: str, path: str) -> str:
    path = _TELEGRAM_PATH.sub("/bot" + MASK, path)
    lowered = path.lower()
    if "/services/" in lowered and "slack" in host:
        return path[: lowered.index("/services/") + len("/services/")] + MASK
    if "/api/webhooks/" in lowered:  # Discord: /api/webhooks/<id>/<token>
        head = path[: lowered.index("/api/webhooks/") + len("/api/webhooks/")]
        rest = path[len(head) :].split("/")
        return head + "/".join([rest[0], MASK] if len(rest) > 1 else [MASK])
    return "/".join(MASK if _keylike(part) else part for part in path.split("/"))


def mask_url(url: str, *, whole_path: bool = False) -> str:
    """`url` with every credential it carries replaced by `***` (see the module docstring)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return mask_text_patterns(url)
    if not parts.scheme or not parts.netloc:
        return mask_text_patterns(url)
    host = parts.hostname or ""
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        address = netloc.rpartition("@")[2]
        user = parts.username or ""
        if parts.password is not None:
            netloc = f"{user}:{MASK}@{address}"
        elif _keylike(user) or len(user) >= 20:  # a bare token as the user name
            netloc = f"{MASK}@{address}"
    if whole_path:
        path = "/" + MASK if parts.path.strip("/") or parts.query else parts.path
        return urlunsplit((parts.scheme, netloc, path, "", ""))
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_CREDENTIAL_NAME.match(name) for name, _ in pairs):
            query = urlencode(
                [(n, MASK if _CREDENTIAL_NAME.match(n) else v) for n, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, _mask_path(host, parts.path), query, parts.fragment))


def url_origin(url: str) -> str:
    """Only the origin: `https://user:key@host/v3/KEY?x=1` -> `https://host` (an endpoint's
    name that is safe to store and log)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def mask_text_patterns(text: str) -> str:
    """Bare tokens and credential `name=value` / `'name': 'value'` pairs (no URL parsing)."""
    text = _TELEGRAM_PATH.sub("/bot" + MASK, text)
    text = _TELEGRAM_TOKEN.sub(MASK, text)
    text = _QUOTED_PAIR.sub(
        lambda m: (
            f"{m['q']}{m['name']}{m['q']}{m['sep']}{m['vq']}{MASK}{m['vq']}" if m["value"] else m[0]
        ),
        text,
    )
    return _PLAIN_PAIR.sub(lambda m: f"{m['name']}={MASK}", text)


def _masked_url_match(match: re.Match[str]) -> str:
    url = match[0]
    core = url.rstrip(".,;:!?)]}")
    return mask_url(core) + url[len(core) :]


def mask_text(text: str, limit: int | None = None) -> str:
    """Mask every URL and credential pattern in `text`, then cut it to `limit` characters."""
    text = _URL.sub(_masked_url_match, text)
    text = mask_text_patterns(text)
    return text if limit is None else text[:limit]


def mask_secret(secret: str) -> str:
    """Show only that a secret is set: a 4-character hint of a long one leaks too little."""
    return f"{secret[:4]}…{MASK}" if len(secret) > 12 else MASK


def secret_hint(secret: str) -> str:
    """Which stored key this is, without revealing it: `****` and, for a key of 12 characters
    or more, its last 4 (`****abcd`, how exchanges and LLM consoles name their keys)."""
    return f"****{secret[-4:]}" if len(secret) >= 12 else "****"


def mask_setting(name: str, value: Any) -> Any:
    """A setting as `omc config` shows it: secrets `***`, credentials inside URLs masked."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    whole = "webhook" in name.lower()
    if isinstance(value, str) and "://" in value:
        return mask_url(value, whole_path=whole)
    if isinstance(value, list | tuple):
        return [mask_setting(name, item) for item in value]
    if isinstance(value, dict):
        return {key: mask_setting(name, item) for key, item in value.items()}
    return value


class Redactor(logging.Filter):
    """Masks known secret values and every credential pattern in strings, payloads and (as a
    logging filter) log records."""

    def __init__(self, *secrets: str | None) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self._lock = threading.Lock()
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        variants: set[str] = set(self.secrets)
        for secret in secrets:
            if secret and len(secret) >= 4:
                variants |= {secret, quote(secret, safe=""), quote_plus(secret)}
        with self._lock:
            self.secrets = sorted(variants, key=len, reverse=True)

    def known(self, value: str) -> str:
        """Only the known secret values replaced (data kept otherwise verbatim)."""
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def text(self, value: str, limit: int | None = None) -> str:
        """Known secrets and every credential pattern masked, then cut to `limit`."""
        return mask_text(self.known(value), limit)

    def payload(self, value: Any) -> Any:
        """A payload kept for the quarantine: known secrets masked in every string."""
        if isinstance(value, str):
            return self.known(value)
        if isinstance(value, dict):
            return {self.payload(k): self.payload(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.payload(v) for v in value]
        return value

    def http_error(self, exc: RequestFailed) -> RequestFailed:
        kind = type(exc) if type(exc) in (HttpError, Unreachable) else HttpError  # keep the kind
        return kind(
            self.text(str(exc)), url=self.text(exc.url), status=exc.status, body=self.text(exc.body)
        )

    def payload_error(self, exc: PayloadError) -> PayloadError:
        return PayloadError(self.text(exc.reason), self.known(exc.raw))

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Mask `redactor`'s secrets in everything the URL-printing loggers log."""
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if redactor not in logger.filters:
            logger.addFilter(redactor)


# The process-wide filter: credential patterns always, plus every value registered here.
PROCESS_REDACTOR = Redactor()
install_log_redaction(PROCESS_REDACTOR)


def register_secrets(*secrets: str | SecretStr | None) -> None:
    """Mask these values in every URL-printing logger of the process from now on."""
    PROCESS_REDACTOR.add(
        *(s.get_secret_value() if isinstance(s, SecretStr) else s for s in secrets)
    )
