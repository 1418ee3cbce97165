"""Is an offer a good deal? Judged against the model's calibrated 80% interval: below its low end a good deal (the true
price is above the offer for at least 9 of 10 such items), inside it a fair price, above its high end overpriced. A
model without an interval gives no verdict: its estimate alone does not say how sure it is."""

import math

NO_VERDICT = "no verdict"


def verdict(estimate: float, offer: float, low: float | None = None, high: float | None = None,
            chance: float | None = None) -> dict:
    """The discount to the estimate, the saving to the interval's low end (the one a buyer can count on), the verdict
    and why; chance: the calibrated chance that the true price is above the offer, where the model has one."""
    discount = estimate - offer
    percent = 100 * discount / estimate if estimate > 0 else 0.0
    said = f"${abs(discount):,.2f} ({abs(percent):.0f}%) {'below' if discount >= 0 else 'above'} the estimate"
    out = {"discount": round(discount, 2), "discount_percent": round(percent, 1)}
    if low is None or high is None:
        return {**out, "saving": None, "verdict": NO_VERDICT,
                "why": f"{said}; this model gives no interval, so no verdict (calibrate it: `pricer calibrate`)"}
    where = "below" if offer < low else "above" if offer > high else "inside"
    word = {"below": "good deal", "above": "overpriced", "inside": "fair price"}[where]
    sure = f"; {100 * chance:.0f}% sure it is worth more" if chance is not None and math.isfinite(chance) else ""
    out |= {"saving": round(low - offer, 2), "verdict": word,
            "why": f"{said}, {where} its 80% range ${low:,.2f}-${high:,.2f}{sure}"}
    if chance is not None and math.isfinite(chance):
        out["confidence"] = round(chance, 3)
    return out
