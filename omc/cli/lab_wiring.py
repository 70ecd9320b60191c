"""The outer shell's wiring of the Lab into the Floor: strategy names `model:<ID>` resolve
to approved Lab models (`omc.lab.promotion`). Registering is light (`omc --help` imports no
pandas or scikit-learn); the Lab is imported only when such a name is looked up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omc.floor.resolvers import register_resolver

if TYPE_CHECKING:
    from omc.floor.strategy import Strategy


def resolve_model(session_id: str) -> type[Strategy]:
    """The Strategy class of the approved Lab session `session_id` (ValueError, one line,
    when it is unknown, not approved, rejected or tampered with)."""
    from omc.cli import context
    from omc.lab.promotion import PREFIX, PromotionError, load_promoted, strategy_for

    sid = session_id.strip()
    if not sid:
        raise PromotionError(f"{PREFIX}:ID needs a Lab session id (see `omc lab sessions`)")
    promoted = load_promoted(context.engine(), sid, context.settings().data_dir / "lab")
    return strategy_for(promoted, context.engine)


def register() -> None:
    """Teach the Floor the names `model:<ID>` (`omc.lab.promotion.PREFIX`)."""
    register_resolver("model", resolve_model)
