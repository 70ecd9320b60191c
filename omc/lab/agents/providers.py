"""The user's chat model, from `LlmSettings`, through LangChain chat models.

    with open_chat(settings) as chat:  # chat.model: a LangChain BaseChatModel
        reply = chat.model.bind_tools(schemas).invoke(messages)

* `openai`: `langchain_openai.ChatOpenAI` (OMC_LLM_BASE_URL overrides the endpoint);
* `openai-compatible`: the same client on `OMC_LLM_BASE_URL` (ending in `/v1`; the client
  posts to `{base}/chat/completions`) — Ollama, vLLM, LM Studio, llama.cpp's server;
* `anthropic`: `langchain_anthropic.ChatAnthropic`; `google`: `langchain_google_genai`;
* `local`: a GGUF file the user supplies (OMC_LLM_MODEL_PATH, or OMC_LLM_MODEL as a path),
  served by `xllamacpp` (llama.cpp, a prebuilt wheel) on 127.0.0.1 for the time of the
  session, and reached with the OpenAI client. Nothing is downloaded.

`provider_error(exc, chat)` turns whatever a client raised (401, 429, a timeout, a refused
connection, …) into one `LlmError` line; the key never appears in it (`Redactor`). Token
counts come from the provider's usage report, else `approx_tokens` (offline, about 4
characters a token: LangChain's own counters download tokenizer files).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omc.core.masking import Redactor, mask_url, register_secrets
from omc.lab.agents.errors import LlmError
from omc.lab.agents.settings import LlmSettings

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)
OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "not-needed"  # what an OpenAI-compatible server without keys is sent


@dataclass
class Chat:
    """An open chat model: LangChain's `model`, what to call it in events (`provider`,
    `name`, `endpoint` masked) and the `redactor` that knows the key."""

    model: BaseChatModel
    provider: str
    name: str
    endpoint: str
    redactor: Redactor = field(default_factory=Redactor)

    def mask(self, text: str, limit: int | None = 300) -> str:
        return self.redactor.text(text, limit)


def _key(settings: LlmSettings, required: bool) -> str | None:
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if required and not key:
        raise LlmError(
            "config_error", f"OMC_LLM_API_KEY is not set (needed by provider {settings.provider})"
        )
    return key


def _model_name(settings: LlmSettings) -> str:
    if not settings.model:
        raise LlmError(
            "config_error", f"OMC_LLM_MODEL is not set (provider {settings.provider} needs one)"
        )
    return settings.model


def _openai(settings: LlmSettings, base: str, key: str, model: str) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        base_url=base,
        api_key=key,  # type: ignore[arg-type]
        timeout=settings.timeout_s,
        max_retries=settings.max_retries,
        temperature=settings.temperature,
        streaming=settings.stream,
        stream_usage=True,
    )


def local_model_file(settings: LlmSettings) -> Path:
    """The GGUF file of provider `local` (LlmError `config_error` when it is missing)."""
    path = settings.model_path or (Path(settings.model) if settings.model else None)
    if path is None:
        raise LlmError(
            "config_error", "provider local needs a GGUF file: set OMC_LLM_MODEL_PATH=/path/m.gguf"
        )
    path = path.expanduser()
    if not path.is_file():
        raise LlmError(
            "config_error",
            f"the local model file {path} does not exist (OMC_LLM_MODEL_PATH; nothing is "
            "downloaded: give the path of a GGUF file you have)",
        )
    return path


@contextmanager
def _llama_server(settings: LlmSettings, path: Path, token: str) -> Iterator[str]:
    """llama.cpp serving `path` on 127.0.0.1 (a free port, requests need `token`) for the
    block: its /v1 URL."""
    try:
        import xllamacpp
    except ImportError as exc:
        raise LlmError("config_error", f"provider local needs xllamacpp: {exc}") from None
    params = xllamacpp.CommonParams()
    target = params.model
    if hasattr(target, "path"):
        target.path = str(path)
    else:  # older bindings take the path itself
        params.model = str(path)
    params.n_ctx = settings.local_ctx
    params.cpuparams.n_threads = settings.local_threads
    params.cpuparams_batch.n_threads = settings.local_threads
    params.hostnames = ["127.0.0.1"]  # never another interface
    params.port = 0  # a free port
    params.offline = True  # never a download (no hub, no URL)
    params.api_keys = [token]  # no other local process may use the session's server
    params.verbosity = -1  # llama.cpp's own log stays off the terminal
    params.use_jinja = True  # the model's chat template renders tool calls
    params.warmup = False
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # the binding raises RuntimeError-like errors on a bad file
        raise LlmError(
            "config_error", f"llama.cpp could not load {path.name}: {exc}", reason="local_model"
        ) from None
    address = str(server.listening_address).rstrip("/")
    if "://" not in address:
        address = f"http://{address}"
    try:
        yield f"{address}/v1"
    finally:
        del server


@contextmanager
def open_chat(settings: LlmSettings) -> Iterator[Chat]:
    """The configured chat model for the block (a local server is stopped after it).
    Raises LlmError `config_error` for a missing model, key, URL or file."""
    provider = settings.provider
    key = settings.api_key.get_secret_value() if settings.api_key else None
    register_secrets(key)  # masked in every URL-printing logger from now on
    redactor = Redactor(key)
    if provider == "none":
        raise LlmError("config_error", "OMC_LLM_PROVIDER is none: no LLM is configured")
    if provider == "local":
        path = local_model_file(settings)
        token = secrets.token_urlsafe(24)
        redactor.add(token)
        with _llama_server(settings, path, token) as base:
            model = _openai(settings, base, token, settings.model or path.stem)
            yield Chat(model, provider, settings.model or path.name, base, redactor)
        return
    name = _model_name(settings)
    if provider in ("openai", "openai-compatible"):
        if provider == "openai-compatible" and not settings.base_url:
            raise LlmError(
                "config_error",
                "provider openai-compatible needs OMC_LLM_BASE_URL (e.g. "
                "http://127.0.0.1:11434/v1 for Ollama)",
            )
        base = settings.base_url or OPENAI_URL
        secret = _key(settings, required=provider == "openai") or NO_KEY
        yield Chat(_openai(settings, base, secret, name), provider, name, mask_url(base), redactor)
    elif provider == "anthropic":
        from langchain_anthropic import ChatAnthropic

        anthropic: Any = ChatAnthropic(  # type: ignore[call-arg]
            model=name,
            api_key=_key(settings, required=True),
            base_url=settings.base_url,
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            temperature=settings.temperature,
            streaming=settings.stream,
        )
        yield Chat(anthropic, provider, name, mask_url(settings.base_url or "anthropic"), redactor)
    elif provider == "google":
        from langchain_google_genai import ChatGoogleGenerativeAI

        google: Any = ChatGoogleGenerativeAI(
            model=name,
            api_key=_key(settings, required=True),
            timeout=settings.timeout_s,
            max_retries=settings.max_retries,
            temperature=settings.temperature,
        )
        yield Chat(google, provider, name, "google", redactor)
    else:  # the Literal makes this unreachable; kept for a clear line if it grows
        raise LlmError("config_error", f"unknown OMC_LLM_PROVIDER {provider!r}")


_REASONS = {401: "unauthorized", 403: "unauthorized", 404: "not_found", 429: "rate_limited"}


def _status_code(exc: BaseException) -> int | None:
    for name in ("status_code", "code", "status"):
        value = getattr(exc, name, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def provider_error(exc: BaseException, chat: Chat) -> LlmError:
    """One masked `provider_error` line for whatever the client raised."""
    where = f"{chat.provider} {chat.endpoint} model {chat.name}"
    names = " ".join(c.__name__ for c in type(exc).__mro__)
    code = _status_code(exc)
    if "Timeout" in names:
        return LlmError(
            "provider_error",
            f"{where}: no reply within the timeout (OMC_LLM_TIMEOUT_S)",
            reason="timeout",
        )
    if code is None and ("Connection" in names or "ConnectError" in names):
        return LlmError("provider_error", f"{where}: cannot connect", reason="unreachable")
    if code in (401, 403):
        return LlmError(
            "provider_error",
            f"{where}: the API key was refused (HTTP {code}): check OMC_LLM_API_KEY",
            reason="unauthorized",
        )
    if code == 429:
        return LlmError(
            "provider_error",
            f"{where}: rate limited or out of quota (HTTP 429) after retries (OMC_LLM_MAX_RETRIES)",
            reason="rate_limited",
        )
    detail = chat.mask(_first_line(exc), 200)
    if code is not None:
        return LlmError(
            "provider_error", f"{where}: HTTP {code}: {detail}", reason=_REASONS.get(code, "http")
        )
    return LlmError("provider_error", f"{where}: {detail}", reason="bad_response")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def approx_tokens(value: Any) -> int:
    """An offline token estimate of text or JSON-able content: ~4 characters a token."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return max(1, math.ceil(len(text) / 4))


__all__ = ["Chat", "approx_tokens", "local_model_file", "open_chat", "provider_error"]
