"""A fake SEC EDGAR (submissions API + full-text search) on 127.0.0.1, with a fault queue.

Real paths and body shapes:

* `GET /submissions/CIK##########.json` — the real Apple capture
  (`tests/data/api/sec_submissions_sample.json`: 25 recent filings as parallel arrays under
  `filings.recent`, one overflow page in `filings.files[]`) for CIK 320193, and a generated
  crypto company (CIK 1679788) whose recent filings include one accession that Apple's list
  also has (a Form 4 filed under both issuer and insider).
* `GET /submissions/CIK##########-submissions-001.json` — the overflow page: the same arrays
  at the top level (older filings; its first row repeats the last recent one, as happens
  when EDGAR moves filings between pages).
* `GET /LATEST/search-index?q=...&forms=...` — `{"hits": {"total": {"value"}, "hits":
  [{"_id": "<adsh>:<doc>", "_source": {"adsh", "form", "file_date", "ciks",
  "display_names", "items", ...}}]}}`, one hit overlapping a company filing.
* any other CIK — HTTP 404 with the S3-style XML body the SEC sends.

Data faults (`spoil`): `drift` (renames `filings.recent.form` to `formType`), `short_array`
(`filingDate` loses its last element), `bad_accession` (row 1's accession becomes `n/a`),
`no_hits` (search body without `hits`). `search_ignores_from` makes every search page answer
the first one (a paging loop).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fakes.notify_server import SEC_404_XML, FakeHttpServer, Fault, Reply, Request, running

DATA = Path(__file__).resolve().parent.parent / "data" / "api"
APPLE = "320193"
CRYPTO = "1679788"
SHARED_ACCESSION_INDEX = 0  # Apple's recent[0] (a Form 4) also appears under CRYPTO
OVERFLOW_ROWS = 6


def apple() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DATA / "sec_submissions_sample.json").read_text())
    return body


def _row(arrays: dict[str, list[Any]], i: int) -> dict[str, Any]:
    return {k: v[i] for k, v in arrays.items()}


def _arrays(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, list[Any]]:
    return {k: [r.get(k, "") for r in rows] for k in keys}


class FakeSec(FakeHttpServer):
    """Submissions for two companies, their overflow pages, and full-text search."""

    def __init__(self) -> None:
        super().__init__()
        base = apple()
        recent = base["filings"]["recent"]
        self.keys = list(recent)
        apple_rows = [_row(recent, i) for i in range(len(recent["accessionNumber"]))]
        older = [
            {
                **apple_rows[-1],
                "accessionNumber": f"0000320193-12-{100 + i:06d}",
                "filingDate": f"2012-0{1 + i % 9}-15",
                "acceptanceDateTime": f"2012-0{1 + i % 9}-15T16:00:00.000Z",
                "form": ["10-K", "10-Q", "8-K"][i % 3],
            }
            for i in range(OVERFLOW_ROWS - 1)
        ]
        self.companies: dict[str, dict[str, Any]] = {APPLE: base}
        self.pages: dict[str, dict[str, Any]] = {
            f"CIK{int(APPLE):010d}-submissions-001.json": _arrays(
                [apple_rows[-1], *older], self.keys
            )
        }
        crypto_rows = [
            {
                **apple_rows[SHARED_ACCESSION_INDEX],
                "form": "4",
            },
            *[
                {
                    **apple_rows[3],
                    "accessionNumber": f"0001679788-24-{i:06d}",
                    "form": form,
                    "items": "1.01,9.01" if form == "8-K" else "",
                    "primaryDocDescription": form,
                }
                for i, form in enumerate(["8-K", "S-1", "10-K", "10-Q", "13F-HR", "8-K/A"], 1)
            ],
        ]
        crypto = copy.deepcopy(base)
        crypto.update({"cik": CRYPTO, "name": "Coinbase Global, Inc.", "tickers": ["COIN"]})
        crypto["filings"] = {"recent": _arrays(crypto_rows, self.keys), "files": []}
        self.companies[CRYPTO] = crypto
        self.search_hits = [
            {
                "_index": "edgar_file",
                "_id": f"{crypto_rows[1]['accessionNumber']}:coin-8k.htm",
                "_score": 9.1,
                "_source": {
                    "ciks": [f"{int(CRYPTO):010d}"],
                    "display_names": ["Coinbase Global, Inc.  (COIN)  (CIK 0001679788)"],
                    "root_forms": ["8-K"],
                    "form": "8-K",
                    "file_type": "8-K",
                    "adsh": crypto_rows[1]["accessionNumber"],
                    "file_date": crypto_rows[1]["filingDate"],
                    "items": ["1.01", "9.01"],
                },
            },
            {
                "_index": "edgar_file",
                "_id": "0001193125-24-000777:d777s1.htm",
                "_score": 8.2,
                "_source": {
                    "ciks": ["0001980994"],
                    "display_names": ["iShares Bitcoin Trust  (IBIT)  (CIK 0001980994)"],
                    "root_forms": ["S-1"],
                    "form": "S-1",
                    "file_type": "S-1",
                    "adsh": "0001193125-24-000777",
                    "file_date": "2024-01-05",
                    "items": [],
                },
            },
        ]

        # a broken search: every page answers the first one (and claims many more hits)
        self.search_ignores_from = False
        self.search_total: int | None = None

    def route(self, request: Request) -> Reply:
        parts = urlsplit(request.path)
        path = parts.path
        if path.startswith("/submissions/") and path.endswith(".json"):
            name = path[len("/submissions/") :]
            if name in self.pages:
                return Reply(200, copy.deepcopy(self.pages[name]))
            if (
                name.startswith("CIK")
                and name[3:13].isdigit()
                and len(name) == len("CIK0000000000.json")
            ):
                company = self.companies.get(str(int(name[3:13])))
                if company is not None:
                    return Reply(200, copy.deepcopy(company))
            return Reply(404, SEC_404_XML, "application/xml")
        if path == "/LATEST/search-index":
            query = parse_qs(parts.query)
            start = 0 if self.search_ignores_from else int(query.get("from", ["0"])[0])
            hits = self.search_hits[start : start + 100]
            return Reply(
                200,
                {
                    "took": 12,
                    "timed_out": False,
                    "hits": {
                        "total": {
                            "value": self.search_total or len(self.search_hits),
                            "relation": "eq",
                        },
                        "max_score": 9.1,
                        "hits": copy.deepcopy(hits),
                    },
                    "query": {"q": query.get("q", [""])[0]},
                },
            )
        return Reply(404, SEC_404_XML, "application/xml")

    def spoil(self, body: Any, fault: Fault) -> Any:
        recent = body.get("filings", {}).get("recent") if isinstance(body, dict) else None
        arrays = recent if recent is not None else body
        if fault.kind == "drift" and isinstance(arrays, dict):
            arrays["formType"] = arrays.pop("form")
        elif fault.kind == "short_array" and isinstance(arrays, dict):
            arrays["filingDate"] = arrays["filingDate"][:-1]
        elif fault.kind == "bad_accession" and isinstance(arrays, dict):
            arrays["accessionNumber"][1] = "n/a"
        elif fault.kind == "no_hits" and isinstance(body, dict):
            body.pop("hits", None)
        return body


def running_sec() -> Iterator[FakeSec]:
    yield from running(FakeSec())


@pytest.fixture
def sec_server() -> Iterator[FakeSec]:
    yield from running_sec()
