"""The paper's claims, experiment by experiment: every statement of its results (Figs. 2-5,
Supp. Figs. 2-4) with the paper's statistic, our rule and the check (:mod:`.checks`).

Where the paper gives a p-value and N, ``paper_effect`` holds them, and the report sets the
effect size they imply beside ours. Where the paper gives no statistic the rule says what we
test and the docstring of its check why.
"""

from __future__ import annotations

from metaplastic.claims import checks as k
from metaplastic.claims.rules import Claim, PaperEffect

_P100 = "one-sided t-test, N_trial = 100"
_TWO = "two-sample t-test, N_trial = 100"
_BELOW = 2.23e-308        # the paper's "p < 2.23e-308": below the smallest normal double

_AT_CHANCE = "at chance: mean significantly below 1.5/N, not significantly above 1/N"


def _one(p: float, bound: bool = False, n: int = 100) -> PaperEffect:
    return PaperEffect(p, n, "one_sample", "one", bound)


def _two(p: float) -> PaperEffect:
    return PaperEffect(p, 100, "two_sample", "two")


SERIAL_POSITION_CLAIMS = (
    Claim("fig2-first-item", "right after item 1 all three networks perform well on it",
          "Fig. 2c, 2f, 2i: every network learns the first item",
          "item 1 above chance after presentation 1 in each network (per-item one-sided t-test vs 1/N)",
          k.first_item_learned(["conventional", "stable", "hybrid"])),
    Claim("fig2d-conventional-seventh", "after the 7th item the conventional network has lost item 1 and "
          "keeps item 7", f"Fig. 2d: item 1 NS, p = 1.00; item 7 p = 1.67e-160 ({_P100})",
          f"item 1 {_AT_CHANCE}; item 7 above chance (one-sided t-test vs 1/N), after presentation 7",
          k.after_presentation("conventional", 7, {1: False, 7: True}), _one(1.67e-160)),
    Claim("fig2g-stable-seventh", "after the 7th item the stable network keeps item 1 and has not "
          "learned item 7", f"Fig. 2g: item 1 p = 1.59e-109; item 7 NS, p = 1.00 ({_P100})",
          f"item 1 above chance; item 7 {_AT_CHANCE}, after presentation 7",
          k.after_presentation("stable", 7, {1: True, 7: False}), _one(1.59e-109)),
    Claim("fig2j-hybrid-seventh", "after the 7th item the hybrid keeps both item 1 and item 7",
          f"Fig. 2j: item 1 p = 1.65e-67; item 7 p = 6.18e-101 ({_P100})",
          "items 1 and 7 above chance (per-item one-sided t-test vs 1/N after presentation 7)",
          k.after_presentation("hybrid", 7, {1: True, 7: True}), _one(1.65e-67)),
    Claim("fig2e-conventional-recency", "the conventional network shows recency: the last six items "
          "above chance, the others not",
          f"Fig. 2e: last six items p < 1.00e-4, the others NS, p = 1.00 ({_P100})",
          f"each of the last 60% of the items above chance; each other item {_AT_CHANCE}",
          k.position_effect("conventional", kept="last", kept_fraction=0.6), _one(1e-4, bound=True)),
    Claim("fig2f-conventional-count", "the conventional network memorizes about six of ten items",
          "Fig. 2f: up to six of ten memorized (mean over 100 trials)",
          "mean memorized count significantly within 0.6 N +- 1 (two one-sided t-tests); contradicted "
          "when significantly beyond that band",
          k.about_memorized("conventional", 0.6)),
    Claim("fig2f-conventional-saturates", "the conventional network's memorized count saturates as "
          "items are added", "Fig. 2f: the count levels off (no statistic)",
          "count after N and after 2N/3 items the same within +-1 (two one-sided paired t-tests)",
          k.count_saturates("conventional")),
    Claim("fig2h-stable-primacy", "the stable network shows primacy: the first three items above "
          "chance, the others not",
          f"Fig. 2h: first three items p < 2.23e-308, the others NS, p > 0.08 ({_P100})",
          f"each of the first 30% of the items above chance; each other item {_AT_CHANCE}",
          k.position_effect("stable", kept="first", kept_fraction=0.3), _one(_BELOW, bound=True)),
    Claim("fig2i-stable-count", "the stable network memorizes about four of ten items",
          "Fig. 2i: about four of ten memorized (mean over 100 trials)",
          "mean memorized count significantly within 0.4 N +- 1 (two one-sided t-tests); contradicted "
          "when significantly beyond that band",
          k.about_memorized("stable", 0.4)),
    Claim("fig2i-stable-saturates", "the stable network's memorized count saturates as items are added",
          "Fig. 2i: the count levels off (no statistic)",
          "count after N and after 2N/3 items the same within +-1 (two one-sided paired t-tests)",
          k.count_saturates("stable")),
    Claim("fig2k-hybrid-every-item", "the hybrid keeps every item above chance",
          f"Fig. 2k: every item p < 2.23e-308 ({_P100})",
          "every item above chance (per-item one-sided t-test vs 1/N) after the last presentation",
          k.all_above_chance("hybrid"), _one(_BELOW, bound=True)),
    Claim("fig2k-hybrid-u", "the hybrid's curve is U-shaped: serial position effect",
          "Fig. 2k: serial position effect (no statistic)",
          "first and last item each above the mean of the middle third (two-sided paired t-tests, "
          "direction checked)",
          k.u_shaped("hybrid")),
    Claim("fig2l-hybrid-memorizes-all", "the hybrid's memorized count equals the number of items "
          "trained, after every presentation",
          "Fig. 2l: memorized = trained at every length (mean over 100 trials)",
          "in every trial, after every presentation, every item trained so far memorized (label-"
          "shuffle test); and every item above chance at the end",
          k.memorizes_every_item("hybrid", after_every_presentation=True)),
)

SEQUENCE_LENGTH_CLAIMS = (
    Claim("fig3b-hybrid-every-item", "with 30 items the hybrid keeps every item, its lowest included, "
          "above chance", "Fig. 3b top: all 30 items memorized; the lowest well above chance",
          "every item above chance after the last presentation (per-item one-sided t-test vs 1/N)",
          k.all_above_chance("hybrid")),
    Claim("fig3b-hybrid-u", "with 30 items the hybrid still shows the serial position effect",
          "Fig. 3b top: U-shaped curve (no statistic)",
          "first and last item each above the mean of the middle third (two-sided paired t-tests, "
          "direction checked)",
          k.u_shaped("hybrid")),
    Claim("fig3c-hybrid-memorizes-all", "the hybrid memorizes all 30 items, regardless of the length",
          "Fig. 3c: all items memorized at every length (no statistic)",
          "every item memorized in every trial (label-shuffle test) and above chance",
          k.memorizes_every_item("hybrid")),
    Claim("fig3b-conventional-forgets", "with 30 items the conventional network forgets the early items",
          "Fig. 3b bottom: catastrophic forgetting of early items",
          f"each of the first 10% of the items {_AT_CHANCE}",
          k.early_items_lost("conventional", 0.1)),
    Claim("fig3c-hybrid-more", "the hybrid memorizes more of 30 items than the conventional network",
          f"Fig. 3c: p = 3.70e-63 ({_TWO})",
          "memorized count hybrid > conventional after the last presentation (two-sided two-sample "
          "t-test, direction checked)",
          k.more_memorized("hybrid", "conventional"), _two(3.70e-63)),
    Claim("fig3c-conventional-converges", "the conventional network's memorized count converges as "
          "the sequence lengthens", f"Fig. 3c: NS, p = 0.16 ({_TWO})",
          "count after 2N/3 and after N items the same within +-1 item (two one-sided paired "
          "t-tests); contradicted when significantly beyond it",
          k.count_saturates("conventional")),
    Claim("fig3d-hybrid-average-falls", "the hybrid's average performance falls as items are added",
          "Fig. 3d: average performance decreases with the items trained",
          "average over the trained items after N/3 items > after N items (two-sided paired t-test, "
          "direction checked)",
          k.average_falls("hybrid")),
    Claim("fig3e-gross-higher", "the hybrid's gross memory is higher than the conventional network's",
          f"Fig. 3e: p = 2.03e-57 ({_TWO})",
          "sum of the final item performances hybrid > conventional (two-sided two-sample t-test, "
          "direction checked)",
          k.compare_final("hybrid", "conventional", "gross memory", lambda row: float(row.sum())),
          _two(2.03e-57)),
    Claim("fig3e-gross-rises", "the gross memory rises with the items trained in both networks",
          "Fig. 3e: gross memory increases (no statistic)",
          "gross memory after N items > after N/3, in each network (two-sided paired t-tests, "
          "direction checked)",
          k.gross_memory_rises(["hybrid", "conventional"])),
    Claim("fig3e-hybrid-gross-converges", "the hybrid's gross memory converges asymptotically to a "
          "constant", "Fig. 3e: gross memory converges beyond a number of items (no statistic)",
          "gain of the gross memory per item over the last third of the sequence within +-1/(2N) "
          "(two one-sided paired t-tests); contradicted when significantly beyond it",
          k.gross_memory_converges("hybrid")),
)

REPETITION_CLAIMS = (
    Claim("fig4c-conventional-unchanged", "the conventional network's lowest item does not improve with "
          "repetition", "Fig. 4c left: performance does not change significantly with repetition",
          "lowest item after pass 9 and after pass 1 the same within +-1/(2N) (two one-sided paired "
          "t-tests); contradicted when significantly beyond it",
          k.lowest_unchanged("conventional")),
    Claim("fig4c-hybrid-lowest-rises", "the hybrid's lowest item improves with repetition",
          "Fig. 4c right, 4d: the lowest performance rises over the repetitions",
          "lowest item after pass 9 > after pass 1 (two-sided paired t-test, direction checked)",
          k.lowest_rises("hybrid")),
    Claim("fig4d-lowest-each-pass", "the hybrid's lowest item rises after each repetition",
          "Fig. 4d: the lowest performance after each repeated trial rises (no statistic)",
          "per trial, Spearman of the lowest item with the pass (1-9); mean rho > 0 (one-sided "
          "one-sample t-test)",
          k.lowest_rises_with_each_pass("hybrid")),
    Claim("fig4c-hybrid-average-rises", "the hybrid's average performance rises with repetition",
          "Fig. 4c right: dashed line (average after the first pass) below the later curves",
          "average over the items after pass 9 > after pass 1 (two-sided paired t-test, direction "
          "checked)",
          k.average_rises("hybrid")),
    Claim("fig4c-hybrid-middle", "repetition helps the hybrid's middle items in particular",
          "Fig. 4c right: enhancement particularly for items in the middle (no statistic)",
          "rise from pass 1 to pass 9 of the middle third > of the first and last items (two-sided "
          "paired t-test, direction checked)",
          k.middle_rises_most("hybrid")),
    Claim("fig4d-hybrid-rises-more", "the hybrid's lowest item improves more than the conventional "
          "network's", f"Fig. 4d: p = 7.32e-91 ({_TWO})",
          "rise of the lowest item from pass 1 to pass 9, hybrid > conventional (two-sided two-sample "
          "t-test, direction checked)",
          k.lowest_rises_more("hybrid", "conventional"), _two(7.32e-91)),
    Claim("supp4c-range-smaller", "after ten repetitions the hybrid's highest-minus-lowest performance "
          "is smaller", f"Supp. Fig. 4c: p = 2.65e-144 ({_TWO})",
          "highest - lowest item after pass 10, conventional > hybrid (two-sided two-sample t-test, "
          "direction checked)",
          k.smaller_range("hybrid", "conventional"), _two(2.65e-144)),
    Claim("supp4-hybrid-range-narrows", "the hybrid's range between its highest and lowest item "
          "narrows over the repetitions", "Supp. Fig. 4: a narrowed difference (no statistic)",
          "highest - lowest after pass 1 > after pass 10 (two-sided paired t-test, direction checked)",
          k.range_narrows("hybrid")),
)

POISONING_CLAIMS = (
    Claim("fig4f-conventional-at-chance", "after the poisoned pass every conventional item is at chance",
          f"Fig. 4f: conventional NS, p > 0.14 ({_P100})",
          f"every item {_AT_CHANCE}, after the poisoned pass",
          k.all_at_chance("conventional")),
    Claim("fig4f-hybrid-every-item", "after the poisoned pass every hybrid item stays above chance",
          f"Fig. 4f: hybrid p < 2.23e-308 ({_P100})",
          "every item above chance (per-item one-sided t-test vs 1/N after the poisoned pass)",
          k.all_above_chance("hybrid"), _one(_BELOW, bound=True)),
    Claim("fig4g-hybrid-higher", "after poisoning the hybrid's average performance is higher",
          f"Fig. 4g: p = 7.52e-48 ({_TWO})",
          "mean final item performance hybrid > conventional (two-sided two-sample t-test, direction "
          "checked)",
          k.compare_final("hybrid", "conventional", "average performance", lambda row: float(row.mean())),
          _two(7.52e-48)),
    Claim("fig4g-hybrid-loses-less", "the poisoned pass costs the hybrid less than the conventional "
          "network", "Fig. 4f-g: the hybrid maintains its memory through the attack (no statistic)",
          "average after the last clean pass minus after the poisoned pass, conventional > hybrid "
          "(two-sided two-sample t-test, direction checked)",
          k.poisoning_costs_less("hybrid", "conventional")),
    Claim("fig4h-hybrid-more", "after poisoning the hybrid memorizes more items",
          f"Fig. 4h: p = 2.32e-38 ({_TWO})",
          "memorized count hybrid > conventional (two-sided two-sample t-test, direction checked)",
          k.more_memorized("hybrid", "conventional"), _two(2.32e-38)),
    Claim("fig4h-conventional-none", "after poisoning the conventional network memorizes almost no item",
          "Fig. 4h: the conventional network lost the memory of all ten items",
          "mean memorized count significantly within 0 +- 1 (two one-sided t-tests)",
          k.count_near("conventional", 0.0)),
)

FREQUENCY_CLAIMS = (
    Claim("fig5c-order-conventional", "the conventional network's performance follows order (last "
          "presentation) more than the hybrid's",
          f"Fig. 5c left: p = 2.29e-21 ({_TWO}); Fig. 5b example r(order) 0.82 vs 0.10",
          "per-trial Spearman(final performance, position of the item's last presentation), "
          "conventional > hybrid (two-sided two-sample t-test, direction checked)",
          k.correlates_more("conventional", "hybrid", "last_position", "last presentation"), _two(2.29e-21)),
    Claim("fig5c-frequency-hybrid", "the hybrid's performance follows presentation frequency more than "
          "the conventional's", f"Fig. 5c right: p = 2.51e-56 ({_TWO}); Fig. 5b example r(frequency) "
          "0.92 vs 0.25",
          "per-trial Spearman(final performance, frequency), hybrid > conventional (two-sided "
          "two-sample t-test, direction checked)",
          k.correlates_more("hybrid", "conventional", "frequency", "frequency"), _two(2.51e-56)),
    Claim("fig5c-hybrid-frequency-over-order", "the hybrid follows frequency more than order",
          "Fig. 5b: hybrid r(frequency) 0.92, r(order) 0.10 (one example trial)",
          "per trial, Spearman with frequency > Spearman with order (two-sided paired t-test, "
          "direction checked)",
          k.follows_more("hybrid", "frequency", "last_position", "frequency", "order")),
    Claim("fig5c-conventional-order-over-frequency", "the conventional network follows order more than "
          "frequency", "Fig. 5b: conventional r(order) 0.82, r(frequency) 0.25 (one example trial)",
          "per trial, Spearman with order > Spearman with frequency (two-sided paired t-test, "
          "direction checked)",
          k.follows_more("conventional", "last_position", "frequency", "order", "frequency")),
    Claim("fig5c-hybrid-significant", "the hybrid's performance-frequency correlation is significant in "
          "most trials", "Fig. 5c right: significant in the hybrid",
          "Spearman(performance, frequency) > 0 at p < 0.05 in more than half of the trials; "
          "contradicted by an exact binomial test of a rate below 1/2, which needs at least 5 "
          "trials (with 3 the claim cannot be contradicted)",
          k.frequency_significant("hybrid", most=True)),
    Claim("fig5c-conventional-none", "the conventional network's performance-frequency correlation is "
          "significant in no trial", "Fig. 5c right: none of the conventional trials significant",
          "no trial with Spearman(performance, frequency) at p < 0.05, of either sign; contradicted "
          "when the count exceeds the 5% false-positive rate significantly (exact binomial test)",
          k.frequency_significant("conventional", most=False)),
)

_SINGLE = [f"constant:{v}" for v in (0.3, 0.5, 0.72, 0.8, 0.88, 0.9, 1.0)]

SINGLE_VALUE_CLAIMS = (
    Claim("supp2a-ends", "a single value of 0.3 gives primacy and 1.0 recency",
          "Supp. Fig. 2a: curves from primacy (0.3) to recency (1.0)",
          "first - last item > 0 for 0.3 and last - first > 0 for 1.0 (one-sided t-tests)",
          k.ends_shape("constant:0.3", "constant:1.0")),
    Claim("supp2a-trend", "raising the single value moves the curve from primacy toward recency",
          "Supp. Fig. 2a: curves for 0.3, 0.5, 0.8, 0.9, 1.0 go from primacy to recency",
          "Spearman correlation between the single value and each trial's first - last item "
          "performance negative at p < 0.05 (one-sided), over all seven values",
          k.primacy_trend({name: float(name.split(":")[1]) for name in _SINGLE})),
    Claim("supp2b-072-partial", "a single value of 0.72 leaves some items at chance and keeps others",
          "Supp. Fig. 2b: 0.72 NS p > 0.34 / p < 2.23e-308 (one-sided t-test, N_trial = 50)",
          f"at least one item above chance (one-sided t-test vs 1/N) and at least one {_AT_CHANCE}",
          k.some_at_chance_some_above("constant:0.72"), _one(_BELOW, bound=True, n=50)),
    Claim("supp2b-088-partial", "a single value of 0.88 leaves some items at chance and keeps others",
          "Supp. Fig. 2b: 0.88 NS p = 0.10 / p < 0.01 (one-sided t-test, N_trial = 50)",
          f"at least one item above chance (one-sided t-test vs 1/N) and at least one {_AT_CHANCE}",
          k.some_at_chance_some_above("constant:0.88"), _one(0.01, bound=True, n=50)),
    Claim("supp2b-ordered", "0.72, 0.8 and 0.88 give different profiles, from primacy to recency",
          "Supp. Fig. 2b: small changes of the value change the profile significantly",
          "first - last item 0.72 > 0.8 > 0.88 (two-sided two-sample t-tests, each adjacent pair, "
          "direction checked)",
          k.primacy_ordered(["constant:0.88", "constant:0.8", "constant:0.72"])),
    Claim("supp3a-08-all", "a single value of 0.8 memorizes all ten items",
          "Supp. Fig. 3a: all ten memorized, p < 0.01 per item (one-sided t-test, N_trial = 50)",
          "every item memorized in every trial and above chance (per-item one-sided t-test)",
          k.memorizes_every_item("constant:0.8"), _one(0.01, bound=True, n=50)),
)

BIASED_CLAIMS = (
    Claim("supp3a-uniform-all", "the uniform (hybrid) profile memorizes all ten items",
          "Supp. Fig. 3a: all ten memorized, p < 0.01 per item (one-sided t-test, N_trial = 50)",
          "every item memorized in every trial and above chance (per-item one-sided t-test)",
          k.memorizes_every_item("hybrid"), _one(0.01, bound=True, n=50)),
    Claim("supp3b-stable-bias", "a stronger bias toward stable synapses gives a stronger primacy",
          "Supp. Fig. 3b left: the degree of bias orders the primacy",
          "first - last item: uniform < biased-stable a = 0.5 < a = 0.1 (two-sided two-sample "
          "t-tests, each adjacent pair, direction checked)",
          k.primacy_ordered(["hybrid", "biased-stable:0.5", "biased-stable:0.1"])),
    Claim("supp3b-flexible-bias", "a stronger bias toward flexible synapses gives a stronger recency",
          "Supp. Fig. 3b right: the degree of bias orders the recency",
          "last - first item: uniform < biased-flexible a = 0.5 < a = 0.1 (two-sided two-sample "
          "t-tests, each adjacent pair, direction checked)",
          k.primacy_ordered(["hybrid", "biased-flexible:0.5", "biased-flexible:0.1"], recency=True)),
)

ALL_CLAIMS = (SERIAL_POSITION_CLAIMS + SEQUENCE_LENGTH_CLAIMS + REPETITION_CLAIMS + POISONING_CLAIMS
              + FREQUENCY_CLAIMS + SINGLE_VALUE_CLAIMS + BIASED_CLAIMS)
BY_NAME = {claim.name: claim for claim in ALL_CLAIMS}
assert len(BY_NAME) == len(ALL_CLAIMS), "every claim needs a name of its own"
