"""Price offers with a model and rank them by the saving a buyer can count on: how far the offer lies below the low
end of the model's calibrated 80% interval."""

import math
from collections import Counter
from dataclasses import dataclass, field

from pricer.deals.offers import Offer, OfferRead, read_offers
from pricer.deals.verdict import verdict
from pricer.errors import PricerError

BATCH = 256


@dataclass
class Deal:
    offer: Offer
    estimate: float
    low: float | None = None
    high: float | None = None
    chance: float | None = None  # the calibrated chance that the true price is above the offer

    @property
    def judged(self) -> dict:
        return verdict(self.estimate, self.offer.price, self.low, self.high, self.chance)

    @property
    def discount(self) -> float:
        return self.estimate - self.offer.price

    @property
    def saving(self) -> float:
        """The offer's distance below the interval's low end (negative inside or above it); -inf without an interval."""
        return -math.inf if self.low is None else self.low - self.offer.price

    @property
    def key(self) -> str:
        return self.offer.key

    def to_dict(self) -> dict:
        out = {"title": self.offer.title, "url": self.offer.url, "offer": self.offer.price,
               "estimate": round(self.estimate, 2), **self.judged}
        if self.low is not None:
            out["interval_80"] = [round(self.low, 2), round(self.high, 2)]
        return out


@dataclass
class Scan:
    deals: list[Deal] = field(default_factory=list)  # every priced offer, largest saving first
    reads: list[OfferRead] = field(default_factory=list)
    unpriced: int = 0  # offers the model gave no number for

    @property
    def offers(self) -> int:
        return sum(len(r.offers) for r in self.reads)

    @property
    def no_price(self) -> int:
        return sum(r.no_price + r.no_text for r in self.reads)

    def summary(self) -> str:
        parts = [f"{self.offers:,} offers from {len(self.reads)} source{'s' * (len(self.reads) != 1)}"]
        if self.no_price:
            parts.append(f"{self.no_price:,} without a readable price or text skipped")
        reasons = sum((read.not_a_price for read in self.reads), Counter())
        if reasons:
            parts.append(f"{sum(reasons.values()):,} whose price is not the product's skipped ("
                         + ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items())) + ")")
        if self.unpriced:
            parts.append(f"{self.unpriced:,} the model could not price")
        return "; ".join(parts)

    def above(self, min_discount: "float | Threshold") -> list[Deal]:
        threshold = Threshold.of(min_discount)
        return [d for d in self.deals if threshold.met_by(d)]


@dataclass(frozen=True)
class Threshold:
    """The least saving a deal must have: dollars below the low end of its interval, or (percent) a share of it."""

    value: float = 0.0
    percent: bool = False

    @classmethod
    def of(cls, given: "float | str | Threshold") -> "Threshold":
        """50, "50", "$50" (dollars) or "30%" (of the low end); negative values let offers inside the interval in."""
        if isinstance(given, Threshold):
            return given
        text = str(given).strip().replace("$", "").replace(",", "")
        percent = text.endswith("%")
        try:
            value = float(text[:-1] if percent else text)
        except ValueError:
            raise PricerError(f"--min-discount {given!r}: give dollars (50) or a percent of the interval's low end (30%)") from None
        if not math.isfinite(value):
            raise PricerError(f"--min-discount {given!r}: give a finite number")
        return cls(value, percent)

    def met_by(self, deal: Deal) -> bool:
        if deal.low is None:
            return False
        if self.percent:
            return deal.low > 0 and 100 * deal.saving / deal.low >= self.value
        return deal.saving >= self.value

    def __str__(self) -> str:
        return f"{self.value:g}% of the interval's low end" if self.percent else f"${self.value:,.2f}"


def price_offers(predictor, offers: list[Offer], progress=None) -> tuple[list[Deal], int]:
    """(deals, how many the model could not price), in batches; progress(done, total) after each."""
    deals, unpriced = [], 0
    calibration = getattr(predictor, "calibration", None)
    for start in range(0, len(offers), BATCH):
        chunk = offers[start:start + BATCH]
        for offer, detail in zip(chunk, predictor.estimate([o.text for o in chunk])):
            price, low, high = (detail.get(key) for key in ("price", "low", "high"))
            if price is None or not math.isfinite(price):
                unpriced += 1
            elif low is None or not (math.isfinite(low) and math.isfinite(high)):
                deals.append(Deal(offer, float(price)))
            else:
                chance = calibration.chance_above(price, offer.price) if calibration is not None else None
                deals.append(Deal(offer, float(price), float(low), float(high), chance))
        if progress:
            progress(min(start + BATCH, len(offers)), len(offers))
    return deals, unpriced


def scan(sources: list[str], predictor, progress=None) -> Scan:
    reads = [read_offers(source) for source in sources]
    unique = {}  # the same offer in two feeds is priced once
    for offer in (o for r in reads for o in r.offers):
        unique.setdefault(offer.key, offer)
    deals, unpriced = price_offers(predictor, list(unique.values()), progress)
    if deals and all(d.low is None for d in deals):
        raise PricerError("the model gives no 80% interval, so no offer can be judged: calibrate it on held-out items "
                          "(`pricer calibrate --model DIR --data FILE`, or --calibrate FILE)")
    return Scan(sorted(deals, key=lambda d: (d.saving, d.discount), reverse=True), reads, unpriced)
