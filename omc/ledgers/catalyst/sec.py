"""SEC EDGAR: company filings (submissions API) and full-text search for crypto keywords.

Endpoints (SEC fair-access rules: a descriptive `User-Agent` with a contact address, at most
10 requests/s for all sec.gov hosts together — one token bucket is shared by both clients):

* `GET {sec_base_url}/submissions/CIK##########.json` — a company's filings. Recent ones are
  parallel arrays under `filings.recent` (`accessionNumber[i]`, `form[i]`, `filingDate[i]`, …);
  older ones are in the pages named by `filings.files[].name`, fetched from
  `{sec_base_url}/submissions/{name}` with the same arrays at the top level. Overflow pages
  never change, so each is read once per collector lifetime (the first run backfills).
* `GET {sec_search_base_url}/LATEST/search-index?q="keyword"&forms=…` — EDGAR full-text
  search; hits are `hits.hits[]._source` with `adsh` (accession), `form`, `file_date`,
  `ciks`, `display_names`, `items`.

An unknown CIK answers HTTP 404 with an XML body: that CIK's part of the run fails with a clear
error (the run is `partial`), the others are stored. Every filing is classified
(`classify_form`) and deduplicated by accession number across companies, pages and search
hits (a Form 4 appears under both the issuer and the insider). A filing whose arrays are
incomplete or whose accession/form/date does not validate is quarantined with the reason; a
page whose `filings` structure drifted is quarantined whole. Filings never change once
accepted, so each event also gets exactly one revision (keyed by its acceptance time).

Times. `acceptanceDateTime` ends in "Z" but is EDGAR's wall-clock time in New York
(America/New_York, EST/EDT), not UTC. Evidence in the captured Apple submissions
(`tests/data/api/sec_submissions_sample.json`): the Form 4 primary documents are named after
the Unix time they were generated — `wk-form4_1691533817.xml` is 2023-08-08 22:30:17 UTC —
and EDGAR accepted that filing at "2023-08-08T18:30:28.000Z", eleven seconds later only if
the "Z" time is EDT (UTC-4); the other eight Form 4s agree to the minute. Apple's 8-K with its
Q3 FY23 results (items 2.02/9.01) shows "2023-08-03T16:30:21.000Z": Apple released those
results at 4:30 p.m. ET, after the close. So the time is read as New York time and stored as
the true UTC instant (20:30:21Z there). Full-text-search hits carry only `file_date`: a
filing with filing date D was accepted no later than 22:00 New York time on D (EDGAR's last
acceptance time; filings after 17:30 get the next business day's date, so never later), so a
search-only filing is stamped with that bound — or with the moment OMC first saw it, if
earlier — never at midnight before it existed; once stored, that stamp is kept (a later
company file with the acceptance time replaces it).

The company filings are this source's primary output: when every configured CIK fails (or
every filing of theirs is quarantined) the run is `failed`, even if search hits were stored.
Search paging stops when a page brings only hits already seen in the walk (a loop).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from sqlalchemy import Engine, Table, select

from omc.core.clients import retry_policy
from omc.core.config import Settings
from omc.core.http import (
    HttpClient,
    HttpError,
    PayloadError,
    RateLimiter,
    RequestFailed,
)
from omc.core.payloads import json_text, validation_summary
from omc.core.time import utcnow
from omc.ledgers.catalyst.classify import classify_form
from omc.ledgers.collectors.base import Collected, Collector, PageTrail, Rejected, Rows
from omc.ledgers.models import CatalystEvent, CatalystEventRevision

SOURCE = "sec"
ACCESSION = re.compile(r"^\d{10}-\d{2}-\d{6}$")
SEARCH_FORMS = "8-K,S-1,S-3,10-K,10-Q,6-K,20-F,424B4,19B-4,N-1A"
# Filings never change; a later, richer sighting (acceptance time, company title) updates the
# scalar columns; coins and payload stay as first seen.
EVENT_COLUMNS = ("kind", "title", "url", "impact", "published_at")
KEYWORD_COINS = {"bitcoin": ["BTC"], "ethereum": ["ETH"], "ether": ["ETH"], "solana": ["SOL"]}
EDGAR_TZ = ZoneInfo("America/New_York")
LAST_ACCEPTANCE = time(22, 0)  # EDGAR accepts filings until 10 p.m. New York time


def accepted_at(value: str) -> datetime:
    """EDGAR's `acceptanceDateTime` (New York wall time, despite its "Z") -> aware UTC."""
    text = value.strip().removesuffix("Z").removesuffix("z")
    wall = datetime.fromisoformat(text)
    if wall.tzinfo is not None:  # an explicit offset other than "Z" is taken as given
        return wall.astimezone(UTC)
    return wall.replace(tzinfo=EDGAR_TZ).astimezone(UTC)


def filing_day_end(day: date) -> datetime:
    """The latest instant a filing with filing date `day` can have been accepted (UTC)."""
    return datetime.combine(day, LAST_ACCEPTANCE, tzinfo=EDGAR_TZ).astimezone(UTC)


class SecError(HttpError):
    """The SEC refused a request for good (e.g. an unknown CIK)."""


class Filing(BaseModel):
    """One filing, from a submissions row or a full-text-search hit."""

    model_config = ConfigDict(extra="ignore")

    accessionNumber: str
    form: str
    filingDate: date
    acceptanceDateTime: datetime | None = None
    reportDate: str | None = None
    items: str | list[str] | None = None
    primaryDocument: str | None = None
    primaryDocDescription: str | None = None
    fileNumber: str | None = None
    size: int | None = None

    @field_validator("accessionNumber")
    @classmethod
    def _accession(cls, value: str) -> str:
        if not ACCESSION.match(value):
            raise ValueError(f"not an accession number: {value!r}")
        return value

    @field_validator("form")
    @classmethod
    def _form(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty form type")
        return value.strip()

    @field_validator("acceptanceDateTime", mode="before")
    @classmethod
    def _accepted(cls, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        return accepted_at(str(value))

    def published_at(self, seen_at: datetime) -> datetime:
        """When the filing became public: its acceptance time, else the filing day's bound
        (never after `seen_at`, when OMC saw it)."""
        if self.acceptanceDateTime is not None:
            return self.acceptanceDateTime
        return min(filing_day_end(self.filingDate), seen_at)


def cik10(cik: str | int) -> str:
    """`1679788` -> `0001679788` (the submissions file name)."""
    digits = str(cik).strip().lstrip("CIKcik")
    if not digits.isdigit() or len(digits) > 10:
        raise ValueError(f"not a CIK: {cik!r}")
    return digits.zfill(10)


def filing_url(cik: str, accession: str, document: str | None) -> str:
    folder = f"https://www.sec.gov/Archives/edgar/data/{int(cik)}/{accession.replace('-', '')}"
    return f"{folder}/{document}" if document else f"{folder}/{accession}-index.htm"


class SecClient:
    """The submissions API and full-text search, sharing one User-Agent and one rate limit."""

    def __init__(self, data: HttpClient, search: HttpClient) -> None:
        self.data = data
        self.search_http = search

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> SecClient:
        headers = {
            "User-Agent": settings.sec_user_agent,
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        retry = retry_policy(settings)
        clients = [
            HttpClient(
                base,
                source=SOURCE,
                timeout_s=settings.http_timeout_s,
                retry=retry,
                rate_per_s=settings.sec_rate_per_s,
                headers=headers,
                **kwargs,
            )
            for base in (settings.sec_base_url, settings.sec_search_base_url)
        ]
        shared = RateLimiter(settings.sec_rate_per_s, **_limiter_kwargs(kwargs))
        for client in clients:  # the 10 req/s limit is per user across every sec.gov host
            client.limiter = shared
        return cls(*clients)

    def close(self) -> None:
        self.data.close()
        self.search_http.close()

    def _json_object(self, http: HttpClient, path: str, **kwargs: Any) -> dict[str, Any]:
        body = http.get_json(path, **kwargs)
        if not isinstance(body, dict):
            raise PayloadError(
                f"{path}: expected a JSON object, got {type(body).__name__}",
                json_text(body, 100_000),
            )
        return body

    def submissions(self, cik: str) -> dict[str, Any]:
        """A company's submissions file. An unknown CIK raises SecError (HTTP 404)."""
        path = f"/submissions/CIK{cik10(cik)}.json"
        try:
            return self._json_object(self.data, path)
        except RequestFailed as exc:
            if exc.status == 404:
                raise SecError(
                    f"sec: unknown CIK {cik} (HTTP 404 on {path})",
                    url=exc.url,
                    status=404,
                    body=exc.body,
                ) from exc
            raise

    def submissions_page(self, name: str) -> dict[str, Any]:
        """An overflow page named in `filings.files[]` (arrays at the top level)."""
        if "/" in name or not name.endswith(".json"):
            raise PayloadError(f"suspicious overflow page name {name!r}", name)
        return self._json_object(self.data, f"/submissions/{name}")

    def search(self, keyword: str, forms: str = SEARCH_FORMS, start: int = 0) -> dict[str, Any]:
        """One page (100 hits) of EDGAR full-text search for the exact phrase `keyword`."""
        params: dict[str, Any] = {"q": f'"{keyword}"', "forms": forms}
        if start:
            params["from"] = start
        return self._json_object(self.search_http, "/LATEST/search-index", params=params)


def _limiter_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs[k] for k in ("clock", "sleep") if k in kwargs}


def iter_filing_arrays(arrays: Any, where: str) -> Iterator[tuple[dict[str, Any] | None, str]]:
    """Rows of a `filings.recent`-style dict of parallel arrays: (row, "") or (None, reason)."""
    if not isinstance(arrays, dict):
        raise PayloadError(
            f"{where}: filings are not an object of arrays", json_text(arrays, 100_000)
        )
    for required in ("accessionNumber", "form", "filingDate"):
        if not isinstance(arrays.get(required), list):
            raise PayloadError(f"{where}: `{required}` array missing", json_text(arrays, 100_000))
    columns = {k: v for k, v in arrays.items() if isinstance(v, list)}
    n = len(columns["accessionNumber"])
    for i in range(n):
        row = {k: v[i] for k, v in columns.items() if i < len(v)}
        short = [k for k, v in columns.items() if i >= len(v)]
        if short:
            yield None, f"{where}[{i}]: arrays too short ({', '.join(sorted(short))}); row {row}"
            continue
        yield row, ""


class SecCollector(Collector):
    """Filings of configured companies plus full-text-search hits for crypto keywords."""

    name = SOURCE

    def __init__(
        self,
        client: SecClient,
        *,
        ciks: list[str],
        keywords: list[str],
        interval_s: float = 900.0,
        search_pages: int = 1,
        follow_files: bool = True,
    ) -> None:
        self.client = client
        self.ciks = ciks
        self.keywords = keywords
        self.interval_s = interval_s
        self.search_pages = search_pages
        self.follow_files = follow_files
        self.files_done: set[str] = set()  # overflow pages already stored (they never change)
        self.seen_at = utcnow()

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> SecCollector:
        http_kwargs = {k: kwargs.pop(k) for k in ("transport", "sleep", "clock") if k in kwargs}
        return cls(
            SecClient.from_settings(settings, **http_kwargs),
            ciks=list(settings.sec_ciks),
            keywords=list(settings.sec_keywords),
            interval_s=settings.sec_interval_s,
            **kwargs,
        )

    def close(self) -> None:
        self.client.close()

    def collect(self) -> Collected:
        result = Collected()
        events: dict[str, dict[str, Any]] = {}
        parts = failed = 0
        pending_files: list[str] = []
        self.seen_at = utcnow()
        company_errors: list[str] = []
        for cik in self.ciks:
            parts += 1
            try:
                body = self.client.submissions(cik)
                pending_files += self._company(body, cik, events, result)
            except PayloadError as exc:
                failed += 1
                result.rejected.append(Rejected(f"CIK {cik}: {exc.reason}", exc.raw))
                company_errors.append(f"CIK {cik}: bad payload: {exc.reason}")
            except (HttpError, ValueError) as exc:
                failed += 1
                company_errors.append(f"CIK {cik}: {exc}")
        result.errors += company_errors
        if self.ciks and len(company_errors) == len(self.ciks):
            result.failure = "company filings: every CIK failed: " + "; ".join(company_errors)
        elif self.ciks:
            company_rejects = list(result.rejected)
            result.fail_if_none_stored("company filings", len(events), company_rejects)
        done_now: list[str] = []
        for name in pending_files:
            parts += 1
            try:
                page = self.client.submissions_page(name)
                cik = str(int(name[3:13])) if name[:3] == "CIK" else ""
                self._rows(page, cik, "", f"{name}", events, result)
                done_now.append(name)
            except PayloadError as exc:
                failed += 1
                result.rejected.append(Rejected(f"{name}: {exc.reason}", exc.raw))
                result.errors.append(f"{name}: bad payload: {exc.reason}")
            except HttpError as exc:
                failed += 1
                result.errors.append(f"{name}: {exc}")
        for keyword in self.keywords:
            trail = PageTrail(f"search {keyword!r}")
            for page_no in range(self.search_pages):
                parts += 1
                try:
                    more = self._search(keyword, page_no * 100, events, result, trail)
                except PayloadError as exc:
                    failed += 1
                    result.rejected.append(Rejected(f"search {keyword!r}: {exc.reason}", exc.raw))
                    result.errors.append(f"search {keyword!r}: bad payload: {exc.reason}")
                    break
                except HttpError as exc:
                    failed += 1
                    result.errors.append(f"search {keyword!r}: {exc}")
                    break
                if not more:
                    break
        if parts and failed == parts and not events:
            raise HttpError("sec: every request failed: " + "; ".join(result.errors), url="")
        self.files_done.update(done_now)  # marked only once their rows are in this result
        self._keep_stored_stamps(events)
        rows = list(events.values())
        result.rows.append(Rows(cast(Table, CatalystEvent.__table__), rows, EVENT_COLUMNS))
        revisions = [{**row, "revision": row["published_at"]} for row in rows]
        result.rows.append(Rows(cast(Table, CatalystEventRevision.__table__), revisions))
        return result

    def _keep_stored_stamps(self, events: dict[str, dict[str, Any]]) -> None:
        """Search-only filings (no acceptance time) keep the time they were first stored."""
        bounded = [k for k, e in events.items() if not e["payload"].get("accepted")]
        db: Engine | None = self.engine
        if not bounded or db is None:
            return
        table = cast(Table, CatalystEvent.__table__)
        with db.connect() as conn:
            stored = dict(
                conn.execute(
                    select(table.c.event_id, table.c.published_at).where(
                        table.c.source == SOURCE, table.c.event_id.in_(bounded)
                    )
                ).all()
            )
        for key, when in stored.items():
            events[key]["published_at"] = when

    def _company(
        self, body: dict[str, Any], cik: str, events: dict[str, dict[str, Any]], result: Collected
    ) -> list[str]:
        filings = body.get("filings")
        if not isinstance(filings, dict) or "recent" not in filings:
            raise PayloadError(f"CIK {cik}: `filings.recent` missing", json_text(body, 100_000))
        company = str(body.get("name") or "")
        self._rows(
            filings["recent"], str(body.get("cik") or cik), company, "recent", events, result
        )
        files = filings.get("files") or []
        if not self.follow_files or not isinstance(files, list):
            return []
        names = [f.get("name") for f in files if isinstance(f, dict)]
        return [n for n in names if isinstance(n, str) and n not in self.files_done]

    def _rows(
        self,
        arrays: Any,
        cik: str,
        company: str,
        where: str,
        events: dict[str, dict[str, Any]],
        result: Collected,
    ) -> None:
        for row, reason in iter_filing_arrays(arrays, f"CIK {cik} {where}"):
            result.fetched += 1
            if row is None:
                result.rejected.append(Rejected(reason, reason))
                continue
            try:
                filing = Filing.model_validate(row)
            except ValidationError as exc:
                result.rejected.append(
                    Rejected(f"CIK {cik} filing: {validation_summary(exc)}", row)
                )
                continue
            if filing.accessionNumber in events:
                continue  # the same filing under another company or page
            kind, impact = classify_form(filing.form, filing.items)
            description = filing.primaryDocDescription or filing.form
            title = f"{company or 'CIK ' + cik}: {filing.form}" + (
                f" — {description}" if description and description != filing.form else ""
            )
            events[filing.accessionNumber] = self._event(
                filing.accessionNumber,
                kind,
                title,
                filing_url(cik, filing.accessionNumber, filing.primaryDocument),
                None,
                impact,
                filing.published_at(self.seen_at),
                {
                    "cik": cik,
                    "company": company,
                    "form": filing.form,
                    "filing_date": filing.filingDate.isoformat(),
                    "accepted": filing.acceptanceDateTime is not None,
                    "report_date": filing.reportDate or None,
                    "items": filing.items or None,
                    "file_number": filing.fileNumber or None,
                    "size": filing.size,
                },
            )

    def _search(
        self,
        keyword: str,
        start: int,
        events: dict[str, dict[str, Any]],
        result: Collected,
        trail: PageTrail,
    ) -> bool:
        """One search page; True when another page may follow."""
        body = self.client.search(keyword, start=start)
        hits = body.get("hits")
        items = hits.get("hits") if isinstance(hits, dict) else None
        if not isinstance(items, list):
            raise PayloadError("`hits.hits` missing", json_text(body, 100_000))
        page_key = ",".join(str(h.get("_id")) for h in items if isinstance(h, dict))
        if items and trail.seen(page_key):  # the same hits as an earlier page: a loop
            result.errors.append(trail.loop(f"from={start}"))
            return False
        coins = KEYWORD_COINS.get(keyword.lower(), [])
        for hit in items:
            result.fetched += 1
            source = hit.get("_source") if isinstance(hit, dict) else None
            if not isinstance(source, dict):
                result.rejected.append(Rejected(f"search {keyword!r}: hit without _source", hit))
                continue
            ciks = source.get("ciks") or []
            names = source.get("display_names") or []
            row = {
                "accessionNumber": source.get("adsh") or str(hit.get("_id", "")).split(":")[0],
                "form": source.get("form") or source.get("root_form") or "",
                "filingDate": source.get("file_date"),
                "items": source.get("items"),
            }
            try:
                filing = Filing.model_validate(row)
            except ValidationError as exc:
                result.rejected.append(
                    Rejected(f"search {keyword!r} hit: {validation_summary(exc)}", hit)
                )
                continue
            existing = events.get(filing.accessionNumber)
            if existing is not None:  # already known from a company file or another keyword
                matched = existing["payload"].setdefault("keywords", [])
                if keyword not in matched:
                    matched.append(keyword)
                existing["coins"] = sorted(set(existing["coins"] or []) | set(coins)) or None
                continue
            cik = str(int(ciks[0])) if ciks and str(ciks[0]).isdigit() else "0"
            company = str(names[0]) if names else f"CIK {cik}"
            document = str(hit.get("_id", "")).partition(":")[2] or None
            kind, impact = classify_form(filing.form, filing.items)
            events[filing.accessionNumber] = self._event(
                filing.accessionNumber,
                kind,
                f"{company}: {filing.form} mentions {keyword!r}",
                filing_url(cik, filing.accessionNumber, document),
                coins or None,
                impact,
                filing.published_at(self.seen_at),
                {
                    "cik": cik,
                    "company": company,
                    "form": filing.form,
                    "filing_date": filing.filingDate.isoformat(),
                    "accepted": False,
                    "items": filing.items or None,
                    "keywords": [keyword],
                },
            )
        total = hits.get("total") if isinstance(hits, dict) else None
        value = total.get("value") if isinstance(total, dict) else None
        return bool(items) and isinstance(value, int) and start + len(items) < value

    @staticmethod
    def _event(
        accession: str,
        kind: str,
        title: str,
        url: str,
        coins: list[str] | None,
        impact: float,
        published_at: datetime,
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "source": SOURCE,
            "event_id": accession,
            "kind": kind,
            "title": title,
            "url": url,
            "coins": coins,
            "impact": impact,
            "published_at": published_at,
            "payload": payload,
        }
