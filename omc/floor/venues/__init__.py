"""Trading venues: one `Venue` interface (see `base`), implemented by the paper venue, the
CoinSpot private API client and the CCXT adapter."""

from omc.floor.venues.base import (
    Balance,
    KnownOrder,
    OrderRequest,
    Quote,
    RejectReason,
    Side,
    Venue,
    VenueError,
    VenueFill,
    VenueOrder,
    VenueOrderAck,
    VenueOrderStatus,
    VenueOrderType,
    VenueUnavailable,
)

__all__ = [
    "Balance",
    "KnownOrder",
    "OrderRequest",
    "Quote",
    "RejectReason",
    "Side",
    "Venue",
    "VenueError",
    "VenueFill",
    "VenueOrder",
    "VenueOrderAck",
    "VenueOrderStatus",
    "VenueOrderType",
    "VenueUnavailable",
]
