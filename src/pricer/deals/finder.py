"""One scan of the deal finder: price the offers, keep those above the threshold, drop the ones already surfaced,
remember the rest, and send every deal the webhook has not received yet."""

from dataclasses import dataclass

from pricer.deals.memory import DealMemory
from pricer.deals.notify import Webhook
from pricer.deals.scan import Deal, Scan, Threshold, scan


@dataclass
class Report:
    scan: Scan
    above: list[Deal]  # every deal whose saving meets the threshold, largest first
    new: list[Deal]    # those not surfaced before (all of them without a memory)
    sent: int = 0
    waiting: int = 0   # deals the webhook has still to receive

    def summary(self, min_discount: "float | str | Threshold") -> str:
        parts = [self.scan.summary()]
        parts.append(f"{len(self.above):,} at least {Threshold.of(min_discount)} below the low end of their 80% range")
        repeated = len(self.above) - len(self.new)
        if self.new:
            parts.append(f"{len(self.new):,} new" + (f", {repeated:,} already surfaced before" if repeated else ""))
        else:
            parts.append(f"no new deals ({repeated:,} already surfaced before; --forget lists them again)" if repeated
                         else "no deals")
        return "; ".join(parts)


def find_deals(sources: list[str], predictor, min_discount: "float | str | Threshold" = 0.0, memory: DealMemory | None = None,
               webhook: Webhook | None = None, progress=None, say=print, show=None) -> Report:
    """One scan. show(deals) is called with the new deals before they count as shown (and before any is sent), so a
    run cut short shows them on a later scan instead of never."""
    result = scan(sources, predictor, progress)
    above = result.above(min_discount)
    new = memory.claim(above, notify=webhook is not None) if memory is not None else above
    report = Report(result, above, new)
    if show is not None:
        show(new)
    if memory is not None:
        memory.mark_shown(new)
    if webhook:
        queue = memory.claim_waiting() if memory is not None else [(d.key, d.to_dict()) for d in new]
        for n, (key, payload) in enumerate(queue):
            if not webhook.send(payload, key=key):
                report.waiting = len(queue) - n
                kept = ("they stay in the memory for the next scan" if memory is not None
                        else "without a memory they are lost")
                say(f"webhook {webhook.url} failed {webhook.attempts} times ({webhook.last_error}); "
                    f"{report.waiting} deal(s) not delivered: {kept}")
                break
            report.sent += 1
            if memory is not None:
                memory.mark_sent(key)
    return report
