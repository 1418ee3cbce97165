"""Is an offer a good deal? The discount against the estimate, judged against the model's 80% interval where it has
one, else against a margin of the estimate."""

MARGIN = 0.2  # without an interval: 20% below the estimate is a deal, 20% above is too much


def verdict(estimate: float, offer: float, low: float | None = None, high: float | None = None) -> dict:
    discount = estimate - offer
    percent = 100 * discount / estimate if estimate > 0 else 0.0
    if low is not None and high is not None:
        if offer < low:
            word, why = "good deal", f"below the 80% range ${low:,.2f}-${high:,.2f}"
        elif offer > high:
            word, why = "overpriced", f"above the 80% range ${low:,.2f}-${high:,.2f}"
        else:
            word, why = "fair price", f"inside the 80% range ${low:,.2f}-${high:,.2f}"
    else:
        if percent >= 100 * MARGIN:
            word = "good deal"
        elif percent <= -100 * MARGIN:
            word = "overpriced"
        else:
            word = "fair price"
        why = f"{abs(percent):.0f}% {'below' if discount >= 0 else 'above'} the estimate (this model gives no interval)"
    return {"discount": round(discount, 2), "discount_percent": round(percent, 1), "verdict": word, "why": why}
