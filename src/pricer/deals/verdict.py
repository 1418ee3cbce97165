"""Is an offer a good deal? The discount against the estimate, judged against the model's 80% interval where it has
one, else against a margin of the estimate."""

MARGIN = 0.2  # without an interval: 20% below the estimate is a deal, 20% above is too much


def verdict(estimate: float, offer: float, low: float | None = None, high: float | None = None) -> dict:
    discount = estimate - offer
    percent = 100 * discount / estimate if estimate > 0 else 0.0
    said = f"${abs(discount):,.2f} ({abs(percent):.0f}%) {'below' if discount >= 0 else 'above'} the estimate"
    if low is not None and high is not None:
        where = "below" if offer < low else "above" if offer > high else "inside"
        word = {"below": "good deal", "above": "overpriced", "inside": "fair price"}[where]
        why = f"{said}, {where} its 80% range ${low:,.2f}-${high:,.2f}"
    else:
        word = "good deal" if percent >= 100 * MARGIN else "overpriced" if percent <= -100 * MARGIN else "fair price"
        why = f"{said} (this model gives no interval; {100 * MARGIN:.0f}% either way decides)"
    return {"discount": round(discount, 2), "discount_percent": round(percent, 1), "verdict": word, "why": why}
