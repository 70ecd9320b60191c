"""Promotion: an approved Lab session's model as the Floor strategy `model:<ID>`.

`load_promoted(engine, ID)` reads the session's artifact (`<data_dir>/lab/<ID>/`) and refuses,
with one line (`PromotionError`), a session that is unknown, not approved, rejected, or whose
files do not match their hashes (the manifest's content hash, the model file's SHA-256, the
plan's, the feature spec's copy, and the artifact hash the session store recorded when the
study ended). `strategy_for(promoted, engine)` builds the Strategy class the Floor runs like
any built-in one — in `omc backtest`, `omc trade paper` (replay or live quotes) and
`omc trade live`; the command line registers it for the names `model:<ID>`.

What the model sees at a bar is what it was trained on for that bar, by the same code:

* **Exchange features** (`returns`, `volatility`, `rsi`, `sma_ratio`, `volume_z`) are one
  `ctx.indicator` over the Floor's point-in-time OHLCV: the feature library's families
  (`features.spec.family_columns`, what `build_matrix` tabulates). The Floor checks it for
  look-ahead on prefixes in a backtest and runs it on a trailing window of the bars in
  trading (`warmup()` is long enough that the window changes nothing).
* **Ledger features** (`sentiment`, `news_volume`, `tvl`, `fees`, `catalyst`) are computed
  for the bar that just closed, at its close (`ctx.now`), from the ledger frames read through
  `omc.ledgers.pit` (`features.inputs.load_ledgers`) with `as_of` at or after that close: the
  families' as-of join on knowledge time sees only rows known by the close. The frames are
  read once when the first bar closes in the past (a backtest or a replay of history: as of
  now, rows stored after a bar's close are invisible at it because their knowledge time is
  never before they were stored), and read again, as of now, whenever a bar closes after
  the last read (live quotes): a row stored since is seen from the next bar on.

The signal is the study's trading rule (`omc.lab.evaluation.trading`): long `size` of equity
while the model's probability exceeds `threshold` (0.5), flat otherwise, an order only when
that changes, at the next bar's open. The study scores only bars whose label is known, so a
backtest of the promoted model on the sealed holdout also trades its last `horizon` bars; on
the rest of the holdout it makes the study's holdout trades.

Live quotes are one-price bars (as for every strategy): the Exchange features then describe
those bars, not the study's candles, and the strategy logs one warning when a run's bars
are not spaced like the study's. A row backfilled after a live session read the ledgers
(declared backfilled history, known at its publication) is seen from the next read on, not
at the bars that closed before it was stored.
"""

from omc.lab.promotion.artifact import PREFIX, Promoted, PromotionError, load_promoted
from omc.lab.promotion.features import LedgerFeed, ledger_features_at
from omc.lab.promotion.strategy import strategy_for

__all__ = [
    "PREFIX",
    "LedgerFeed",
    "Promoted",
    "PromotionError",
    "ledger_features_at",
    "load_promoted",
    "strategy_for",
]
