"""DeFiLlama: the client, the payload models and the Glass collector for DeFi fundamentals.

This module owns everything OMC reads from DeFiLlama's free API (no key), under
`OMC_DEFILLAMA_BASE_URL` (default `https://api.llama.fi`):

* `GET /protocols` — a bare array, one object per protocol DeFiLlama tracks (`slug`, `tvl`,
  `chainTvls` chain -> float, `change_1h|1d|7d` percent or null, `mcap`, `category`, …).
* `GET /protocol/{slug}` — one protocol with its history: `tvl: [{date, totalLiquidityUSD}]`
  (dates in epoch **seconds**), `chainTvls: {key: {tvl: [...]}}` and `currentChainTvls`.
* `GET /summary/fees/{slug}?dataType=dailyFees|dailyRevenue` — `total24h`, `total7d`,
  `totalAllTime` and the daily chart `totalDataChart: [[epoch_s, value], …]`.
* `GET /v2/historicalChainTvl/{chain}` — `[{date, tvl}]` for a whole chain.

What is stored (`source='defillama'`; values are exact `Decimal`s in USD, changes in percent):

* Metrics: `tvl`, `tvl_change_1h`, `tvl_change_1d`, `tvl_change_7d`, `mcap`, `fees_24h`,
  `fees_7d`, `fees_all_time`, `revenue_24h`, `revenue_7d`, `revenue_all_time`, and the daily
  history series `fees` / `revenue` (the day's total). `chain=''` is the headline (all
  chains), otherwise the chain's name. The headline TVL excludes DeFiLlama's category keys:
  `Ethereum-borrowed`, `-staking`, `-pool2` (and `-vesting`, `-doublecounted`, … likewise);
  those values are kept as their own metrics (`borrowed`, `staking`, `pool2`, …) for the
  chain (`Ethereum`) or for `''` (the bare `staking` key). The headline is the payload's
  `tvl` when it is a number, else the sum of the plain chain keys.
* Whole-chain TVL history (`/v2/historicalChainTvl/{chain}`) is stored with `protocol=''`
  (all protocols), `chain=<name>`, `metric='tvl'`.
* `protocol_latest` holds the latest intraday snapshot (`ts` = observation time, updated on
  every run). `protocol_metrics` holds the history, one row per protocol, chain, metric and
  UTC day (`ts` = the day's 00:00 UTC). History is insert-only: the **first observation of a
  day is kept**; later same-day observations only update `protocol_latest`. History points
  of `/protocol/{slug}` and the fee charts are floored to their UTC day the same way (the
  first point of a day wins), so a re-run inserts nothing new.
* `/protocols` is stored for every protocol it lists (one request); the configured
  `defillama_protocols` are the ones whose history and fees are fetched, and
  `defillama_chains` the chains whose TVL history is fetched. Coins: the configured
  `defillama_protocol_coins` of the slug or of its parent (`parent#uniswap` -> `uniswap`),
  else the payload's `symbol` (when not `-`).
* `category` and other text fields are not stored (`protocol_metrics.value` is numeric).

A `/protocols` entry without `slug` (older API shapes) gets the slug DeFiLlama derives from
the name (`sluggifyString`: lower case, spaces -> `-`, apostrophes dropped). A malformed item
(neither slug nor name, TVL not a number or negative, a bad history point) is rejected with
its reason and quarantined by the runner; the rest is stored. When one part of the fetch fails
(a protocol's fees answer 404, a chain's history times out) the other parts are stored and the
run is `partial`; when every part fails the run fails. `/protocols` is the primary output:
when it fails, lists nothing (DeFiLlama always lists thousands) or every entry of it is
quarantined, the run is `failed` with that reason, whatever else was stored.

Rate limits: DeFiLlama's free API allows about 300 requests per 5 minutes per IP; the client
keeps to `RATE_PER_S` (1 request/s) by default. One run makes `1 + 3 × protocols + chains`
requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, cast
from urllib.parse import quote

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import Table

from omc.core.clients import http_client
from omc.core.config import Settings
from omc.core.db_types import to_decimal
from omc.core.http import HttpClient, HttpError, PayloadError
from omc.core.payloads import json_text, validation_summary
from omc.core.time import floor_time, from_epoch_s, utcnow
from omc.ledgers.collectors.base import Collected, Collector, Rejected, Rows
from omc.ledgers.models import ProtocolLatest, ProtocolMetric

SOURCE = "defillama"
RATE_PER_S = 1.0
DAY_S = 86_400
# `coins` is not an update column: `upsert()` compares update columns with IS DISTINCT FROM,
# which PostgreSQL's `json` type does not support (a changed coin mapping reaches new rows and
# the history, the latest snapshot keeps the coins it was first stored with).
LATEST_UPDATE = ("ts", "value")
# DeFiLlama's non-chain TVL categories: `staking`, `Ethereum-staking`, … never count in the
# headline TVL.
CATEGORY_KEYS = frozenset(
    {
        "borrowed",
        "staking",
        "pool2",
        "vesting",
        "doublecounted",
        "liquidstaking",
        "dcAndLsOverlap",
        "offers",
        "treasury",
        "govtokens",
    }
)
# Epoch seconds accepted as history dates: 2009-01-03 (the first Bitcoin block) to 2100.
MIN_EPOCH_S = 1_230_940_800
MAX_EPOCH_S = 4_102_444_800

Number = Annotated[Decimal, BeforeValidator(to_decimal)]
Key = tuple[str, str, str, str, datetime]


def split_chain_key(key: str) -> tuple[str, str]:
    """A `chainTvls` key -> (chain, metric): `Ethereum` -> (Ethereum, tvl),
    `Ethereum-staking` -> (Ethereum, staking), `borrowed` -> ('', borrowed)."""
    if key in CATEGORY_KEYS:
        return "", key
    chain, sep, category = key.rpartition("-")
    if sep and chain and category in CATEGORY_KEYS:
        return chain, category
    return key, "tvl"


def sluggify(name: str) -> str:
    """DeFiLlama's slug of a protocol name (its `sluggifyString`): `Uniswap V3` -> `uniswap-v3`."""
    return name.strip().lower().replace(" ", "-").replace("'", "")


def day_start(value: datetime) -> datetime:
    """00:00 UTC of the day `value` falls in."""
    return floor_time(value, DAY_S)


def epoch_seconds(value: Any) -> datetime:
    """A history date (epoch seconds, number or numeric string) -> aware UTC datetime."""
    if isinstance(value, bool):
        raise ValueError(f"date is not a number: {value!r}")
    number = to_decimal(value)
    if number != number.to_integral_value():
        number = number.to_integral_value()
    seconds = int(number)
    if not MIN_EPOCH_S <= seconds <= MAX_EPOCH_S:
        raise ValueError(f"date {value!r} is not in epoch seconds (2009..2100)")
    return from_epoch_s(seconds)


class ProtocolItem(BaseModel):
    """One `/protocols` entry (only the fields OMC stores or needs; DeFiLlama's names)."""

    model_config = ConfigDict(extra="ignore")

    slug: str
    symbol: str | None = None
    parentProtocol: str | None = None
    tvl: Number | None = None
    chainTvls: dict[str, Number] = {}
    change_1h: Number | None = None
    change_1d: Number | None = None
    change_7d: Number | None = None
    mcap: Number | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_slug(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("slug"):
            name = data.get("name")
            if isinstance(name, str) and name.strip():
                return {**data, "slug": sluggify(name)}
        return data

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("empty slug")
        return value

    @field_validator("symbol", "parentProtocol", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return None if value is None else str(value)

    @field_validator("chainTvls", mode="before")
    @classmethod
    def _chains(cls, value: Any) -> Any:
        return {} if value is None else value


class FeesSummary(BaseModel):
    """A `/summary/fees/{slug}` body (the totals; the chart is validated point by point)."""

    model_config = ConfigDict(extra="ignore")

    total24h: Number | None = None
    total7d: Number | None = None
    totalAllTime: Number | None = None
    totalDataChart: list[Any] = []

    @field_validator("totalDataChart", mode="before")
    @classmethod
    def _chart(cls, value: Any) -> Any:
        return [] if value is None else value


def headline_tvl(item: ProtocolItem) -> Decimal | None:
    """The protocol's TVL without borrowed / staking / pool2 (etc.) money."""
    if item.tvl is not None:
        return item.tvl
    plain = [v for k, v in item.chainTvls.items() if split_chain_key(k)[1] == "tvl"]
    return sum(plain, Decimal(0)) if plain else None


class DefiLlamaClient:
    """Typed access to the four DeFiLlama endpoints OMC uses (raw JSON, validated later)."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http

    @classmethod
    def from_settings(
        cls, settings: Settings, *, rate_per_s: float | None = RATE_PER_S, **kwargs: Any
    ) -> DefiLlamaClient:
        http = http_client(
            settings,
            settings.defillama_base_url,
            SOURCE,
            rate_per_s=rate_per_s,
            headers={"Accept": "application/json"},
            **kwargs,
        )
        return cls(http)

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, kind: type, **kwargs: Any) -> Any:
        body = self.http.get_json(path, **kwargs)
        if not isinstance(body, kind):
            raise PayloadError(
                f"{path}: expected a JSON {kind.__name__}, got {type(body).__name__}",
                json_text(body),
            )
        return body

    def protocols(self) -> list[Any]:
        return cast(list[Any], self._get("/protocols", list))

    def protocol(self, slug: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._get(f"/protocol/{quote(slug, safe='')}", dict))

    def fees(self, slug: str, data_type: str = "dailyFees") -> dict[str, Any]:
        path = f"/summary/fees/{quote(slug, safe='')}"
        return cast(dict[str, Any], self._get(path, dict, params={"dataType": data_type}))

    def chain_tvl(self, chain: str) -> list[Any]:
        return cast(list[Any], self._get(f"/v2/historicalChainTvl/{quote(chain, safe='')}", list))


class _Batch:
    """Rows of one run, deduplicated on the tables' primary keys (the first row wins)."""

    def __init__(self) -> None:
        self.history: dict[Key, dict[str, Any]] = {}
        self.latest: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    def add_history(
        self,
        protocol: str,
        chain: str,
        metric: str,
        ts: datetime,
        value: Decimal,
        coins: list[str] | None,
    ) -> None:
        key = (SOURCE, protocol, chain, metric, ts)
        if key not in self.history:
            self.history[key] = {
                "source": SOURCE,
                "protocol": protocol,
                "chain": chain,
                "metric": metric,
                "ts": ts,
                "value": value,
                "coins": coins,
            }

    def add_snapshot(
        self,
        protocol: str,
        chain: str,
        metric: str,
        observed: datetime,
        value: Decimal,
        coins: list[str] | None,
    ) -> None:
        """A current value: the latest snapshot, and the day's history row."""
        key = (SOURCE, protocol, chain, metric)
        if key not in self.latest:
            self.latest[key] = {
                "source": SOURCE,
                "protocol": protocol,
                "chain": chain,
                "metric": metric,
                "ts": observed,
                "value": value,
                "coins": coins,
            }
        self.add_history(protocol, chain, metric, day_start(observed), value, coins)

    def rows(self) -> list[Rows]:
        return [
            Rows(cast(Table, ProtocolMetric.__table__), list(self.history.values())),
            Rows(cast(Table, ProtocolLatest.__table__), list(self.latest.values()), LATEST_UPDATE),
        ]


class DefiLlamaCollector(Collector):
    """Every run: `/protocols` (all), then history + fees of tracked protocols, chain TVLs."""

    name = SOURCE

    def __init__(
        self,
        client: DefiLlamaClient,
        *,
        protocols: Iterable[str] = (),
        chains: Iterable[str] = (),
        protocol_coins: dict[str, list[str]] | None = None,
        interval_s: float = 3600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.protocols = list(dict.fromkeys(protocols))
        self.chains = list(dict.fromkeys(chains))
        self.protocol_coins = {
            k.lower(): [c.upper() for c in v] for k, v in (protocol_coins or {}).items()
        }
        self.interval_s = interval_s
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> DefiLlamaCollector:
        client_kwargs = {k: kwargs.pop(k) for k in ("rate_per_s", "transport") if k in kwargs}
        return cls(
            DefiLlamaClient.from_settings(settings, **client_kwargs),
            protocols=settings.defillama_protocols,
            chains=settings.defillama_chains,
            protocol_coins=settings.defillama_protocol_coins,
            interval_s=settings.defillama_interval_s,
            **kwargs,
        )

    def close(self) -> None:
        self.client.close()

    def coins_for(
        self, slug: str, parent: str | None = None, symbol: str | None = None
    ) -> list[str] | None:
        """The coins a protocol concerns: configured for it or its parent, else its symbol."""
        for name in (slug, (parent or "").removeprefix("parent#")):
            if name and name.lower() in self.protocol_coins:
                return self.protocol_coins[name.lower()]
        if symbol and symbol.strip() not in ("", "-"):
            return [symbol.strip().upper()]
        return None

    # ------------------------------------------------------------------ the run

    def collect(self) -> Collected:
        observed = self.clock()
        result = Collected()
        batch = _Batch()
        failures: list[Exception] = []

        def part(label: str, fn: Callable[..., Any], *args: Any) -> Any:
            try:
                return fn(*args)
            except PayloadError as exc:
                result.rejected.append(Rejected(f"{label}: {exc.reason}", exc.raw))
                result.errors.append(f"{label}: bad payload: {exc.reason}")
                failures.append(exc)
            except HttpError as exc:
                result.errors.append(f"{label}: {exc}")
                failures.append(exc)
            return None

        before = len(result.errors)
        snapshot: set[str] | None = part("protocols", self._protocols, observed, batch, result)
        if snapshot is None:  # the primary output failed: the run fails, the rest is kept
            result.failure = result.errors[before]
        snapshot = snapshot or set()
        for slug in self.protocols:
            in_snapshot = slug in snapshot
            part(f"protocol {slug}", self._history, slug, observed, batch, result, in_snapshot)
            for data_type, prefix in (("dailyFees", "fees"), ("dailyRevenue", "revenue")):
                args = (slug, data_type, prefix, observed, batch, result)
                part(f"{prefix} {slug}", self._fees, *args)
        for chain in self.chains:
            part(f"chain {chain}", self._chain, chain, batch, result)
        parts = 1 + 3 * len(self.protocols) + len(self.chains)
        if len(failures) == parts and not result.rejected:
            first = failures[0]
            assert isinstance(first, HttpError)
            raise HttpError(
                "defillama: every request failed: " + "; ".join(result.errors),
                url=first.url,
                status=first.status,
                body=first.body,
            )
        result.rows = batch.rows()
        return result

    def _protocols(self, observed: datetime, batch: _Batch, result: Collected) -> set[str]:
        """`/protocols`: the snapshot of every protocol; returns the slugs stored."""
        items = self.client.protocols()
        stored: set[str] = set()
        rejected_before = len(result.rejected)
        if not items:
            result.failure = "protocols: empty snapshot (DeFiLlama never lists no protocols)"
        for raw in items:
            result.fetched += 1
            if not isinstance(raw, dict):
                result.rejected.append(Rejected("protocols: item is not an object", raw))
                continue
            label = f"protocol {raw.get('slug')!r}"
            try:
                item = ProtocolItem.model_validate(raw)
            except ValidationError as exc:
                result.rejected.append(Rejected(f"{label}: {validation_summary(exc)}", raw))
                continue
            tvl = headline_tvl(item)
            problem = None
            if tvl is None:
                problem = "no TVL (tvl null and no chainTvls)"
            elif tvl < 0:
                problem = f"negative tvl {tvl}"
            else:
                bad = [k for k, v in item.chainTvls.items() if v < 0]
                if bad:
                    problem = f"negative chainTvls {', '.join(bad)}"
            if problem:
                result.rejected.append(Rejected(f"{label}: {problem}", raw))
                continue
            if item.slug in stored:  # the same protocol listed twice: first one wins
                continue
            stored.add(item.slug)
            assert tvl is not None
            coins = self.coins_for(item.slug, item.parentProtocol, item.symbol)
            batch.add_snapshot(item.slug, "", "tvl", observed, tvl, coins)
            for key, value in item.chainTvls.items():
                chain, metric = split_chain_key(key)
                batch.add_snapshot(item.slug, chain, metric, observed, value, coins)
            extra: tuple[tuple[str, Decimal | None], ...] = (
                ("tvl_change_1h", item.change_1h),
                ("tvl_change_1d", item.change_1d),
                ("tvl_change_7d", item.change_7d),
                ("mcap", item.mcap),
            )
            for metric, figure in extra:
                if figure is not None:
                    batch.add_snapshot(item.slug, "", metric, observed, figure, coins)
        result.fail_if_none_stored("protocols", len(stored), result.rejected[rejected_before:])
        return stored

    def _series(
        self,
        label: str,
        points: Any,
        value_key: str,
        result: Collected,
        allow_negative: bool = False,
    ) -> list[tuple[datetime, Decimal]]:
        """Validate `[{date, <value_key>}]` or `[[date, value]]` points; bad ones rejected."""
        if points is None:
            return []
        if not isinstance(points, list):
            raise PayloadError(f"{label}: history is not a list", json_text(points))
        out: list[tuple[datetime, Decimal]] = []
        for point in points:
            result.fetched += 1
            try:
                if isinstance(point, dict):
                    when, value = point["date"], point[value_key]
                elif isinstance(point, list) and len(point) == 2:
                    when, value = point
                else:
                    raise ValueError("point is neither {date, value} nor [date, value]")
                ts = epoch_seconds(when)
                if value is None:
                    raise ValueError("value is null")
                number = to_decimal(value)
                if number < 0 and not allow_negative:
                    raise ValueError(f"negative value {number}")
            except (KeyError, TypeError, ValueError) as exc:
                reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
                result.rejected.append(Rejected(f"{label}: {reason}", point))
                continue
            out.append((day_start(ts), number))
        return out

    def _history(
        self, slug: str, observed: datetime, batch: _Batch, result: Collected, in_snapshot: bool
    ) -> None:
        body = self.client.protocol(slug)
        coins = self.coins_for(slug, _text(body.get("parentProtocol")), _text(body.get("symbol")))
        label = f"protocol {slug}"
        for ts, value in self._series(f"{label} tvl", body.get("tvl"), "totalLiquidityUSD", result):
            batch.add_history(slug, "", "tvl", ts, value, coins)
        chain_tvls = body.get("chainTvls") or {}
        if not isinstance(chain_tvls, dict):
            raise PayloadError(f"{label}: chainTvls is not an object", json_text(body))
        for key, entry in chain_tvls.items():
            chain, metric = split_chain_key(key)
            points = entry.get("tvl") if isinstance(entry, dict) else entry
            for ts, value in self._series(f"{label} {key}", points, "totalLiquidityUSD", result):
                batch.add_history(slug, chain, metric, ts, value, coins)
        if in_snapshot:
            return
        # A protocol `/protocols` does not list (a parent such as `uniswap`): its current
        # figures come from `currentChainTvls`, the headline without category keys.
        current = body.get("currentChainTvls") or {}
        if not isinstance(current, dict):
            raise PayloadError(f"{label}: currentChainTvls is not an object", json_text(body))
        values: dict[tuple[str, str], Decimal] = {}
        for key, raw in current.items():
            try:
                number = to_decimal(raw)
            except ValueError as exc:
                result.rejected.append(
                    Rejected(f"{label} currentChainTvls {key}: {exc}", {key: raw})
                )
                continue
            if number < 0:
                result.rejected.append(
                    Rejected(f"{label} currentChainTvls {key}: negative", {key: raw})
                )
                continue
            values[split_chain_key(key)] = number
        plain = [v for (_, metric), v in values.items() if metric == "tvl"]
        if plain:
            batch.add_snapshot(slug, "", "tvl", observed, sum(plain, Decimal(0)), coins)
        for (chain, metric), value in values.items():
            batch.add_snapshot(slug, chain, metric, observed, value, coins)
        mcap = body.get("mcap")
        if isinstance(mcap, int | float | str) and not isinstance(mcap, bool):
            with contextlib.suppress(ValueError):
                batch.add_snapshot(slug, "", "mcap", observed, to_decimal(mcap), coins)

    def _fees(
        self,
        slug: str,
        data_type: str,
        prefix: str,
        observed: datetime,
        batch: _Batch,
        result: Collected,
    ) -> None:
        body = self.client.fees(slug, data_type)
        label = f"{prefix} {slug}"
        try:
            summary = FeesSummary.model_validate(body)
        except ValidationError as exc:
            result.fetched += 1
            result.rejected.append(Rejected(f"{label}: {validation_summary(exc)}", body))
            return
        coins = self.coins_for(slug, _text(body.get("parentProtocol")), _text(body.get("symbol")))
        for suffix, value in (
            ("24h", summary.total24h),
            ("7d", summary.total7d),
            ("all_time", summary.totalAllTime),
        ):
            if value is not None:
                batch.add_snapshot(slug, "", f"{prefix}_{suffix}", observed, value, coins)
        allow_negative = prefix == "revenue"  # revenue net of incentives can be negative
        points = self._series(label, summary.totalDataChart, "value", result, allow_negative)
        for ts, value in points:
            batch.add_history(slug, "", prefix, ts, value, coins)

    def _chain(self, chain: str, batch: _Batch, result: Collected) -> None:
        points = self._series(f"chain {chain}", self.client.chain_tvl(chain), "tvl", result)
        for ts, value in points:
            batch.add_history("", chain, "tvl", ts, value, None)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
